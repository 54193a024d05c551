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
// Flags: -allow-kind group/version/Kind (repeatable) accepts a custom resource (a
// CloudNativePG Cluster, a MinIO Tenant), whose Go types are not compiled in: it is only
// checked for well-formed YAML without duplicate keys and for valid metadata. -json prints the
// decoded documents as one JSON array on stdout (tests read rendered charts that way).
//
// It prints one line per problem and exits 1 when there is any, 2 when the input cannot be
// read, 0 otherwise. Nothing is fetched from the network: the schemas are the compiled-in
// API types, pinned in go.mod.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
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

// kindList is the repeatable -allow-kind flag.
type kindList map[string]bool

func (k kindList) String() string { return fmt.Sprint(map[string]bool(k)) }
func (k kindList) Set(value string) error {
	if strings.Count(value, "/") < 1 {
		return fmt.Errorf("want group/version/Kind (or version/Kind), not %q", value)
	}
	k[value] = true
	return nil
}

func main() {
	asJSON := flag.Bool("json", false, "print the decoded documents as a JSON array")
	flag.Var(allowedKinds, "allow-kind", "accept this custom resource kind, group/version/Kind (repeatable)")
	flag.Parse()
	inputs := flag.Args()
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
	if len(docs) == 0 && len(problems) == 0 {
		// Nothing to check is a failure: a render that failed upstream of a pipe looks like this.
		problems = append(problems, "no Kubernetes documents in the input")
	}
	// With -json, stdout holds only the JSON; the report goes to stderr.
	report := os.Stdout
	if *asJSON {
		report = os.Stderr
		printJSON(docs)
	}
	for _, problem := range problems {
		fmt.Fprintln(report, problem)
	}
	if len(problems) > 0 {
		fmt.Fprintf(report, "validate: %d problem(s) in %d document(s)\n", len(problems), len(docs))
		os.Exit(1)
	}
	fmt.Fprintf(report, "validate: %d document(s) OK\n", len(docs))
}

func printJSON(docs []document) {
	objects := make([]runtime.Object, 0, len(docs))
	for _, d := range docs {
		objects = append(objects, d.object)
	}
	out, err := json.Marshal(objects)
	if err != nil {
		fmt.Fprintf(os.Stderr, "validate: cannot print JSON: %v\n", err)
		os.Exit(2)
	}
	fmt.Println(string(out))
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
