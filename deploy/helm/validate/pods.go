package main

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// checkPodSpec checks what every pod of the chart must have: declared volumes for every
// mount, unique env names, resource requests, the restricted security context and, for
// long-running pods, probes that name a declared port.
func checkPodSpec(p *problems, d document, spec *corev1.PodSpec, longRunning bool) {
	volumes := map[string]bool{}
	for _, volume := range spec.Volumes {
		if volumes[volume.Name] {
			p.add(d, "volume %q is declared twice", volume.Name)
		}
		volumes[volume.Name] = true
	}
	if !longRunning && spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		p.add(d, "a Job's pods need restartPolicy Never or OnFailure, not %q", spec.RestartPolicy)
	}
	containers := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for i := range containers {
		c := &containers[i]
		if c.Image == "" {
			p.add(d, "container %q has no image", c.Name)
		}
		checkResources(p, d, c)
		checkRestricted(p, d, c, spec.SecurityContext)
		checkEnvAndMounts(p, d, c, volumes)
		checkPorts(p, d, c)
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if longRunning && (c.ReadinessProbe == nil || c.LivenessProbe == nil) {
			p.add(d, "container %q needs a readiness and a liveness probe", c.Name)
		}
		for kind, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
			checkProbe(p, d, c, kind, probe)
		}
	}
}

func checkResources(p *problems, d document, c *corev1.Container) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[name]; !ok {
			p.add(d, "container %q requests no %s (the scheduler cannot place it honestly)", c.Name, name)
		}
	}
	for name, limit := range c.Resources.Limits {
		if request, ok := c.Resources.Requests[name]; ok && limit.Cmp(request) < 0 {
			p.add(d, "container %q: %s limit %s is below its request %s", c.Name, name, limit.String(), request.String())
		}
	}
}

// checkRestricted holds every container to the "restricted" Pod Security Standard, plus a
// read-only root filesystem.
func checkRestricted(p *problems, d document, c *corev1.Container, pod *corev1.PodSecurityContext) {
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot)
	if !nonRoot {
		p.add(d, "container %q may run as root (set runAsNonRoot: true)", c.Name)
	}
	if (sc.RunAsUser != nil && *sc.RunAsUser == 0) || (sc.RunAsUser == nil && pod.RunAsUser != nil && *pod.RunAsUser == 0) {
		p.add(d, "container %q runs as uid 0", c.Name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.add(d, "container %q must set allowPrivilegeEscalation: false", c.Name)
	}
	if sc.Privileged != nil && *sc.Privileged {
		p.add(d, "container %q is privileged", c.Name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		p.add(d, "container %q must set readOnlyRootFilesystem: true", c.Name)
	}
	dropsAll := false
	if sc.Capabilities != nil {
		for _, capability := range sc.Capabilities.Drop {
			dropsAll = dropsAll || capability == "ALL"
		}
		for _, capability := range sc.Capabilities.Add {
			if capability != "NET_BIND_SERVICE" {
				p.add(d, "container %q adds capability %s", c.Name, capability)
			}
		}
	}
	if !dropsAll {
		p.add(d, "container %q must drop ALL capabilities", c.Name)
	}
	profile := sc.SeccompProfile
	if profile == nil {
		profile = pod.SeccompProfile
	}
	if profile == nil || (profile.Type != corev1.SeccompProfileTypeRuntimeDefault && profile.Type != corev1.SeccompProfileTypeLocalhost) {
		p.add(d, "container %q needs seccompProfile RuntimeDefault (or Localhost)", c.Name)
	}
}

func checkEnvAndMounts(p *problems, d document, c *corev1.Container, volumes map[string]bool) {
	names := map[string]bool{}
	for _, env := range c.Env {
		if names[env.Name] {
			// The API server keeps the last one silently; a chart that renders two is confused.
			p.add(d, "container %q sets env %s twice", c.Name, env.Name)
		}
		names[env.Name] = true
		if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil {
			ref := env.ValueFrom.SecretKeyRef
			if ref.Name == "" || ref.Key == "" {
				p.add(d, "container %q: env %s reads a secret with no name or key", c.Name, env.Name)
			}
		}
	}
	paths := map[string]bool{}
	for _, mount := range c.VolumeMounts {
		if !volumes[mount.Name] {
			p.add(d, "container %q mounts volume %q, which the pod does not declare", c.Name, mount.Name)
		}
		if paths[mount.MountPath] {
			p.add(d, "container %q mounts two volumes at %s", c.Name, mount.MountPath)
		}
		paths[mount.MountPath] = true
	}
}

func checkPorts(p *problems, d document, c *corev1.Container) {
	names := map[string]bool{}
	for _, port := range c.Ports {
		if port.Name == "" {
			continue
		}
		for _, message := range validation.IsValidPortName(port.Name) {
			p.add(d, "container %q: port name %q: %s", c.Name, port.Name, message)
		}
		if names[port.Name] {
			p.add(d, "container %q declares port name %q twice", c.Name, port.Name)
		}
		names[port.Name] = true
	}
}

// checkProbe requires a probe's port to be one the container declares, so a renamed or
// renumbered port cannot leave a probe knocking on a closed one.
func checkProbe(p *problems, d document, c *corev1.Container, kind string, probe *corev1.Probe) {
	if probe == nil {
		return
	}
	owner := []podOwner{{template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{*c}}}}}
	var port *intstr.IntOrString
	switch {
	case probe.GRPC != nil:
		grpcPort := intstr.FromInt32(probe.GRPC.Port)
		port = &grpcPort
	case probe.TCPSocket != nil:
		port = &probe.TCPSocket.Port
	case probe.HTTPGet != nil:
		port = &probe.HTTPGet.Port
	}
	if port != nil && !hasPort(owner, *port) {
		p.add(d, "container %q: the %s probe's port %s is not a port the container declares", c.Name, kind, port.String())
	}
}
