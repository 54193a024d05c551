package main

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	sigsyaml "sigs.k8s.io/yaml"
)

// allowedKinds are custom resources accepted untyped (-allow-kind).
var allowedKinds = kindList{}

// The kinds a chart of ours may render: anything else (a typo in apiVersion or kind, a
// removed API version such as policy/v1beta1) is reported as unknown.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme,
		appsv1.AddToScheme,
		batchv1.AddToScheme,
		autoscalingv2.AddToScheme,
		policyv1.AddToScheme,
		networkingv1.AddToScheme,
		rbacv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// EnableStrict makes the YAML and JSON serializers reject unknown and duplicate fields
// (the same strictness as `kubectl apply --validate=strict`, decided here without a server).
var decoder = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

// decodeStrict turns one YAML document into its typed object (or, for an allowed custom
// resource, an unstructured one, after a strict parse that rejects duplicate keys).
func decodeStrict(raw []byte) (runtime.Object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := sigsyaml.Unmarshal(raw, &head); err == nil && allowedKinds[head.APIVersion+"/"+head.Kind] {
		var content map[string]interface{}
		if err := sigsyaml.UnmarshalStrict(raw, &content); err != nil {
			return nil, fmt.Errorf("%s %s: %w", head.APIVersion, head.Kind, err)
		}
		return &unstructured.Unstructured{Object: content}, nil
	}
	object, gvk, err := decoder.Decode(raw, nil, nil)
	if err != nil {
		if gvk != nil && gvk.Kind != "" {
			return nil, fmt.Errorf("%s %s: %w", gvk.GroupVersion().String(), gvk.Kind, err)
		}
		return nil, err
	}
	// The universal deserializer leaves the type meta empty on typed objects; put it back
	// so messages can name the kind.
	object.GetObjectKind().SetGroupVersionKind(*gvk)
	return object, nil
}
