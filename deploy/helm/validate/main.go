// Command validate checks rendered Kubernetes manifests strictly and offline.
//
// Usage:
//
//	helm template ... | validate            # documents on stdin
//	validate rendered.yaml other.yaml       # or in files
//
// Each YAML document is decoded into the typed Kubernetes object of its apiVersion and kind
// (k8s.io/api, the same Go types the API server decodes into) with strict decoding: an
// unknown field, a duplicate field, a value of the wrong type, an unparsable quantity or an
// unknown kind is an error. Then the documents are checked together (checks.go): selectors
// that select nothing, probes and Service targetPorts naming ports no container has, mounts
// of undeclared volumes, containers without resource requests or without the restricted
// security context, an HPA whose target has no CPU request, a PodDisruptionBudget that can
// never be satisfied.
//
// It prints one line per problem and exits 1 when there is any, 2 when the input cannot be
// read, 0 otherwise. Nothing is fetched from the network: the schemas are the compiled-in
// API types, pinned in go.mod.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// document is one decoded manifest and where it came from, for messages.
type document struct {
	origin string // "file: document N" plus helm's "# Source:" comment when present
	object runtime.Object
}

var sourceComment = regexp.MustCompile(`(?m)^# Source: (.+)$`)

func main() {
	inputs := os.Args[1:]
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	var problems []string
	var docs []document
	for _, name := range inputs {
		data, err := readInput(name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "validate: %s: %v\n", name, err)
			os.Exit(2)
		}
		found, bad := decodeAll(name, data)
		docs = append(docs, found...)
		problems = append(problems, bad...)
	}
	problems = append(problems, checkAll(docs, len(problems) == 0)...)
	for _, problem := range problems {
		fmt.Println(problem)
	}
	if len(problems) > 0 {
		fmt.Printf("validate: %d problem(s) in %d document(s)\n", len(problems), len(docs))
		os.Exit(1)
	}
	fmt.Printf("validate: %d document(s) OK\n", len(docs))
}

func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(bufio.NewReader(os.Stdin))
	}
	return os.ReadFile(name)
}

// decodeAll splits a multi-document YAML stream and decodes every non-empty document.
func decodeAll(name string, data []byte) ([]document, []string) {
	var docs []document
	var problems []string
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for index := 1; ; index++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		origin := fmt.Sprintf("%s: document %d", name, index)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: cannot split the YAML stream: %v", origin, err))
			break
		}
		if match := sourceComment.FindSubmatch(raw); match != nil {
			origin += " (" + string(match[1]) + ")"
		}
		if isEmpty(raw) {
			continue
		}
		object, err := decodeStrict(raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", origin, err))
			continue
		}
		docs = append(docs, document{origin: origin, object: object})
	}
	return docs, problems
}

// isEmpty reports whether a document holds nothing but comments and blank lines.
func isEmpty(raw []byte) bool {
	var value interface{}
	if err := sigsyaml.Unmarshal(raw, &value); err != nil {
		return false // let the strict decoder report it
	}
	return value == nil
}

// describe names an object the way kubectl does: Kind/name.
func describe(object runtime.Object) string {
	kind := object.GetObjectKind().GroupVersionKind().Kind
	if named, ok := object.(interface{ GetName() string }); ok {
		return kind + "/" + named.GetName()
	}
	return strings.ToLower(kind)
}
