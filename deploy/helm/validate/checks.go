package main

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// problems collects messages, each prefixed with the document it is about.
type problems struct {
	messages []string
	complete bool // every document decoded, so "selects nothing" is a finding
}

func (p *problems) add(d document, format string, args ...interface{}) {
	p.messages = append(p.messages, fmt.Sprintf("%s: %s: %s", d.origin, describe(d.object), fmt.Sprintf(format, args...)))
}

// dangling reports a reference to something not rendered, when that is a finding.
func (p *problems) dangling(d document, format string, args ...interface{}) {
	if p.complete {
		p.add(d, format, args...)
	}
}

// podOwner is a rendered workload: what Services, HPAs, PDBs and NetworkPolicies select.
type podOwner struct {
	name       string // Kind/name
	template   *corev1.PodTemplateSpec
	deployment *appsv1.Deployment // nil for a Job
}

// checkAll runs the per-object checks, then the checks between objects. When some document
// could not be decoded (complete is false), a selector that matches nothing is not reported:
// the workload it selects may be the document that failed.
func checkAll(docs []document, complete bool) []string {
	p := problems{complete: complete}
	var owners []podOwner
	seen := map[string]string{}
	for _, d := range docs {
		id := describe(d.object)
		if previous, twice := seen[id]; twice {
			p.add(d, "rendered twice (also in %s)", previous)
		}
		seen[id] = d.origin
		checkMeta(&p, d)
		switch o := d.object.(type) {
		case *appsv1.Deployment:
			checkDeployment(&p, d, o)
			owners = append(owners, podOwner{id, &o.Spec.Template, o})
		case *batchv1.Job:
			checkPodSpec(&p, d, &o.Spec.Template.Spec, false)
			owners = append(owners, podOwner{id, &o.Spec.Template, nil})
		}
	}
	scaled := map[string]*autoscalingv2.HorizontalPodAutoscaler{}
	for _, d := range docs {
		if hpa, ok := d.object.(*autoscalingv2.HorizontalPodAutoscaler); ok {
			checkHPA(&p, d, hpa, owners)
			scaled[hpa.Spec.ScaleTargetRef.Name] = hpa
		}
	}
	services := map[string]*corev1.Service{}
	for _, d := range docs {
		if svc, ok := d.object.(*corev1.Service); ok {
			services[svc.Name] = svc
		}
	}
	for _, d := range docs {
		switch o := d.object.(type) {
		case *corev1.Service:
			checkService(&p, d, o, owners)
		case *policyv1.PodDisruptionBudget:
			checkPDB(&p, d, o, owners, scaled)
		case *networkingv1.NetworkPolicy:
			checkNetworkPolicy(&p, d, o, owners)
		case *networkingv1.Ingress:
			checkIngress(&p, d, o, services)
		}
	}
	return p.messages
}

// checkMeta checks the name, labels and annotation keys as the API server would.
func checkMeta(p *problems, d document) {
	object, err := meta.Accessor(d.object)
	if err != nil {
		p.add(d, "has no metadata")
		return
	}
	nameRule := validation.IsDNS1123Subdomain
	if _, isService := d.object.(*corev1.Service); isService {
		nameRule = validation.IsDNS1035Label
	}
	for _, message := range nameRule(object.GetName()) {
		p.add(d, "metadata.name %q: %s", object.GetName(), message)
	}
	for key, value := range object.GetLabels() {
		for _, message := range append(validation.IsQualifiedName(key), validation.IsValidLabelValue(value)...) {
			p.add(d, "label %s=%q: %s", key, value, message)
		}
	}
	for key := range object.GetAnnotations() {
		for _, message := range validation.IsQualifiedName(key) {
			p.add(d, "annotation %s: %s", key, message)
		}
	}
}

func checkDeployment(p *problems, d document, deployment *appsv1.Deployment) {
	selector, err := metav1.LabelSelectorAsSelector(deployment.Spec.Selector)
	switch {
	case err != nil || deployment.Spec.Selector == nil:
		p.add(d, "spec.selector is missing or invalid (%v)", err)
	case !selector.Matches(labels.Set(deployment.Spec.Template.Labels)):
		p.add(d, "spec.selector %s does not match the pod template's labels %v", selector, deployment.Spec.Template.Labels)
	}
	checkPodSpec(p, d, &deployment.Spec.Template.Spec, true)
}

// selects returns the owners whose pod labels the selector matches (none for a nil selector).
func selects(selector labels.Selector, owners []podOwner) []podOwner {
	var found []podOwner
	for _, owner := range owners {
		if selector.Matches(labels.Set(owner.template.Labels)) {
			found = append(found, owner)
		}
	}
	return found
}

// hasPort reports whether a container of the owners declares the port (by name or number).
func hasPort(owners []podOwner, port intstr.IntOrString) bool {
	for _, owner := range owners {
		for _, c := range owner.template.Spec.Containers {
			for _, declared := range c.Ports {
				if (port.Type == intstr.String && declared.Name == port.StrVal) ||
					(port.Type == intstr.Int && declared.ContainerPort == port.IntVal) {
					return true
				}
			}
		}
	}
	return false
}

func checkService(p *problems, d document, svc *corev1.Service, owners []podOwner) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if len(svc.Spec.Selector) == 0 {
		p.add(d, "has no selector, so it would route to nothing this chart runs")
		return
	}
	selected := selects(labels.SelectorFromSet(svc.Spec.Selector), owners)
	if len(selected) == 0 {
		p.dangling(d, "selector %v matches no pod rendered here", svc.Spec.Selector)
		return
	}
	for _, port := range svc.Spec.Ports {
		target := port.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(port.Port)
		}
		if !hasPort(selected, target) {
			p.add(d, "port %q targets %s, which no container of %s declares", port.Name, target.String(), selected[0].name)
		}
	}
}

func checkHPA(p *problems, d document, hpa *autoscalingv2.HorizontalPodAutoscaler, owners []podOwner) {
	spec := hpa.Spec
	if spec.MinReplicas != nil && *spec.MinReplicas > spec.MaxReplicas {
		p.add(d, "minReplicas %d is above maxReplicas %d", *spec.MinReplicas, spec.MaxReplicas)
	}
	var target *appsv1.Deployment
	for _, owner := range owners {
		if owner.deployment != nil && owner.deployment.Name == spec.ScaleTargetRef.Name && spec.ScaleTargetRef.Kind == "Deployment" {
			target = owner.deployment
		}
	}
	if target == nil {
		p.dangling(d, "scaleTargetRef %s/%s is not a Deployment rendered here", spec.ScaleTargetRef.Kind, spec.ScaleTargetRef.Name)
		return
	}
	if target.Spec.Replicas != nil {
		p.add(d, "its Deployment %s also sets spec.replicas, which every upgrade would reset under the autoscaler", target.Name)
	}
	for _, metric := range spec.Metrics {
		if metric.Resource == nil || metric.Resource.Target.Type != autoscalingv2.UtilizationMetricType {
			continue
		}
		for _, c := range target.Spec.Template.Spec.Containers {
			if _, ok := c.Resources.Requests[metric.Resource.Name]; !ok {
				p.add(d, "scales on %s utilization, but container %q of %s requests no %s", metric.Resource.Name, c.Name, target.Name, metric.Resource.Name)
			}
		}
	}
}

func checkPDB(p *problems, d document, pdb *policyv1.PodDisruptionBudget, owners []podOwner, scaled map[string]*autoscalingv2.HorizontalPodAutoscaler) {
	selector, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || pdb.Spec.Selector == nil {
		p.add(d, "spec.selector is missing or invalid (%v)", err)
		return
	}
	selected := selects(selector, owners)
	if len(selected) == 0 {
		p.dangling(d, "selector %s matches no pod rendered here", selector)
		return
	}
	for _, owner := range selected {
		if owner.deployment == nil {
			continue
		}
		// The fewest replicas the workload may run with: the autoscaler's floor, else its count.
		replicas := int32(1)
		if hpa, ok := scaled[owner.deployment.Name]; ok && hpa.Spec.MinReplicas != nil {
			replicas = *hpa.Spec.MinReplicas
		} else if owner.deployment.Spec.Replicas != nil {
			replicas = *owner.deployment.Spec.Replicas
		}
		blocked := (pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int && pdb.Spec.MinAvailable.IntVal >= replicas) ||
			(pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.Type == intstr.Int && pdb.Spec.MaxUnavailable.IntVal == 0)
		if blocked {
			p.add(d, "allows no voluntary eviction of %s (%d replica(s)): node drains would hang", owner.name, replicas)
		}
	}
}

func checkNetworkPolicy(p *problems, d document, policy *networkingv1.NetworkPolicy, owners []podOwner) {
	selector, err := metav1.LabelSelectorAsSelector(&policy.Spec.PodSelector)
	if err != nil {
		p.add(d, "spec.podSelector is invalid: %v", err)
		return
	}
	selected := selects(selector, owners)
	if len(selected) == 0 {
		p.dangling(d, "podSelector %s matches no pod rendered here", selector)
		return
	}
	for _, rule := range policy.Spec.Ingress {
		for _, port := range rule.Ports {
			if port.Port != nil && port.Port.Type == intstr.String && !hasPort(selected, *port.Port) {
				p.add(d, "ingress port %q is not a port name of %s", port.Port.StrVal, selected[0].name)
			}
		}
	}
}

func checkIngress(p *problems, d document, ingress *networkingv1.Ingress, services map[string]*corev1.Service) {
	for _, rule := range ingress.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for _, path := range rule.HTTP.Paths {
			backend := path.Backend.Service
			if backend == nil {
				continue
			}
			svc, ok := services[backend.Name]
			if !ok {
				p.dangling(d, "path %s goes to Service %s, which is not rendered here", path.Path, backend.Name)
				continue
			}
			found := false
			for _, port := range svc.Spec.Ports {
				found = found || port.Name == backend.Port.Name && port.Name != "" || port.Port == backend.Port.Number && port.Port != 0
			}
			if !found {
				p.add(d, "path %s goes to a port Service %s does not have (%s%d)", path.Path, backend.Name, backend.Port.Name, backend.Port.Number)
			}
		}
	}
}
