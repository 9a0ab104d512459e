// Package prices holds the dated AWS price files `tributary-cloud plan`
// prices a fleet with, one YAML file per region (us-east-1.yaml, ...),
// embedded in the binary so that nothing is downloaded at run time. The
// format and its validation live in cloud/plan; every number names the page
// it was read from. Prices change: each file says when it was compiled.
package prices

import "embed"

// FS holds the price files, named {region}.yaml.
//
//go:embed *.yaml
var FS embed.FS
