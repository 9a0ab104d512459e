package plan

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-iot/tributary/deploy/prices"
	"github.com/tributary-iot/tributary/internal/strictyaml"
)

// Price is one unit price in US dollars and the page it was read from.
type Price struct {
	USD    float64 `yaml:"usd" json:"usd"`
	Source string  `yaml:"source" json:"source"`
	set    bool    // usd was in the file
}

// Guide is a planning figure that is not a price (a per-broker throughput,
// a per-partition quota) and the page it comes from.
type Guide struct {
	Value  float64 `yaml:"value" json:"value"`
	Source string  `yaml:"source" json:"source"`
	set    bool    // value was in the file
}

// Prices is one price file: deploy/prices/{region}.yaml, or -prices FILE.
// Every field is required.
type Prices struct {
	Region        string        `yaml:"region" json:"region"`
	AsOf          string        `yaml:"as_of" json:"as_of"` // YYYY-MM-DD
	Note          string        `yaml:"note" json:"note,omitempty"`
	HoursPerMonth float64       `yaml:"hours_per_month" json:"hours_per_month"`
	Kinesis       KinesisPrices `yaml:"kinesis" json:"kinesis"`
	MSK           MSKPrices     `yaml:"msk" json:"msk"`

	// File is where the prices came from: "embedded:us-east-1.yaml" or a
	// path. Set by the loaders.
	File string `yaml:"-" json:"file"`
}

// UnmarshalYAML decodes {usd, source}. Validate reports a missing usd
// by its path, so a forgotten price is an error rather than a free line.
func (p *Price) UnmarshalYAML(n *yaml.Node) error {
	var err error
	p.USD, p.Source, p.set, err = valueAndSource(n, "usd")
	return err
}

// UnmarshalYAML decodes {value, source}.
func (g *Guide) UnmarshalYAML(n *yaml.Node) error {
	var err error
	g.Value, g.Source, g.set, err = valueAndSource(n, "value")
	return err
}

// valueAndSource decodes a {key: NUMBER, source: URL} mapping, strictly.
func valueAndSource(n *yaml.Node, key string) (v float64, src string, set bool, err error) {
	if n.Kind != yaml.MappingNode {
		return 0, "", false, fmt.Errorf("line %d: want a mapping {%s: NUMBER, source: URL}", n.Line, key)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		switch k.Value {
		case key:
			if err := val.Decode(&v); err != nil {
				return 0, "", false, fmt.Errorf("line %d: %s: want a number", val.Line, key)
			}
			set = true
		case "source":
			if err := val.Decode(&src); err != nil {
				return 0, "", false, fmt.Errorf("line %d: source: want a URL", val.Line)
			}
		default:
			return 0, "", false, fmt.Errorf("line %d: field %s not found (want %s and source)", k.Line, k.Value, key)
		}
	}
	return v, src, set, nil
}

// KinesisPrices are Kinesis Data Streams' prices.
type KinesisPrices struct {
	Provisioned KinesisProvisionedPrices `yaml:"provisioned" json:"provisioned"`
	OnDemand    KinesisOnDemandPrices    `yaml:"on_demand" json:"on_demand"`
}

// KinesisProvisionedPrices are the prices of a provisioned stream.
type KinesisProvisionedPrices struct {
	ShardHour                  Price `yaml:"shard_hour" json:"shard_hour"`
	PutPayloadUnitsPerMillion  Price `yaml:"put_payload_units_per_million" json:"put_payload_units_per_million"`
	ExtendedRetentionShardHour Price `yaml:"extended_retention_shard_hour" json:"extended_retention_shard_hour"`
	LongTermRetentionGBMonth   Price `yaml:"long_term_retention_gb_month" json:"long_term_retention_gb_month"`
	EFOConsumerShardHour       Price `yaml:"efo_consumer_shard_hour" json:"efo_consumer_shard_hour"`
	EFODataOutGB               Price `yaml:"efo_data_out_gb" json:"efo_data_out_gb"`
}

// KinesisOnDemandPrices are the prices of an on-demand stream.
type KinesisOnDemandPrices struct {
	StreamHour               Price `yaml:"stream_hour" json:"stream_hour"`
	DataInGB                 Price `yaml:"data_in_gb" json:"data_in_gb"`
	DataOutGB                Price `yaml:"data_out_gb" json:"data_out_gb"`
	EFODataOutGB             Price `yaml:"efo_data_out_gb" json:"efo_data_out_gb"`
	ExtendedRetentionGBMonth Price `yaml:"extended_retention_gb_month" json:"extended_retention_gb_month"`
	LongTermRetentionGBMonth Price `yaml:"long_term_retention_gb_month" json:"long_term_retention_gb_month"`
}

// MSKPrices are Amazon MSK's prices.
type MSKPrices struct {
	Provisioned MSKProvisionedPrices `yaml:"provisioned" json:"provisioned"`
	Serverless  MSKServerlessPrices  `yaml:"serverless" json:"serverless"`
}

// MSKProvisionedPrices are the prices of a provisioned cluster of one
// broker type, and the throughput one broker is planned for.
type MSKProvisionedPrices struct {
	BrokerType        string `yaml:"broker_type" json:"broker_type"`
	BrokerHour        Price  `yaml:"broker_hour" json:"broker_hour"`
	StorageGBMonth    Price  `yaml:"storage_gb_month" json:"storage_gb_month"`
	BrokerIngressMiBs Guide  `yaml:"broker_ingress_mib_s" json:"broker_ingress_mib_s"`
	BrokerEgressMiBs  Guide  `yaml:"broker_egress_mib_s" json:"broker_egress_mib_s"`
}

// MSKServerlessPrices are the prices of an MSK Serverless cluster and its
// per-partition write quota.
type MSKServerlessPrices struct {
	ClusterHour          Price `yaml:"cluster_hour" json:"cluster_hour"`
	PartitionHour        Price `yaml:"partition_hour" json:"partition_hour"`
	DataInGB             Price `yaml:"data_in_gb" json:"data_in_gb"`
	DataOutGB            Price `yaml:"data_out_gb" json:"data_out_gb"`
	StorageGBMonth       Price `yaml:"storage_gb_month" json:"storage_gb_month"`
	PartitionIngressMiBs Guide `yaml:"partition_ingress_mib_s" json:"partition_ingress_mib_s"`
}

// ErrUnknownRegion: no embedded price file for the region asked for.
var ErrUnknownRegion = errors.New("plan: no embedded price file for this region")

// Regions lists the regions with an embedded price file.
func Regions() []string {
	m, _ := fs.Glob(prices.FS, "*.yaml")
	out := make([]string, 0, len(m))
	for _, f := range m {
		out = append(out, strings.TrimSuffix(f, ".yaml"))
	}
	sort.Strings(out)
	return out
}

// EmbeddedPrices returns the price file compiled into the binary for
// region.
func EmbeddedPrices(region string) (*Prices, error) {
	name := region + ".yaml"
	b, err := fs.ReadFile(prices.FS, name)
	if err != nil {
		return nil, fmt.Errorf("%w: %q (embedded: %s; or pass -prices FILE)", ErrUnknownRegion, region, strings.Join(Regions(), ", "))
	}
	return ParsePrices(b, "embedded:"+name)
}

// LoadPrices reads and validates a price file.
func LoadPrices(path string) (*Prices, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plan: prices: %w", err)
	}
	return ParsePrices(b, path)
}

// ParsePrices decodes a price file strictly (unknown keys are errors) and
// validates it: every price and guide present, positive (prices may be 0,
// guides not) and sourced by an https URL; errors name the field.
func ParsePrices(b []byte, name string) (*Prices, error) {
	var p Prices
	if err := strictyaml.Decode(b, &p); err != nil {
		return nil, fmt.Errorf("plan: prices %s: %w", name, err)
	}
	p.File = name
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("plan: prices %s: %w", name, err)
	}
	return &p, nil
}

// Validate checks every field; the errors name each one that is wrong by
// its YAML path (kinesis.provisioned.shard_hour.usd).
func (p *Prices) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.Region == "" {
		add("region: required (e.g. us-east-1)")
	}
	if _, err := time.Parse(time.DateOnly, p.AsOf); err != nil {
		add("as_of: %q: want the date the prices were read, YYYY-MM-DD", p.AsOf)
	}
	if p.HoursPerMonth < 672 || p.HoursPerMonth > 744 {
		add("hours_per_month: %v: want the hours of a billing month, 672..744 (AWS's calculator uses 730)", p.HoursPerMonth)
	}
	if p.MSK.Provisioned.BrokerType == "" {
		add("msk.provisioned.broker_type: required (e.g. kafka.m7g.large)")
	}
	walkPrices(reflect.ValueOf(p).Elem(), "", func(path string, v any) {
		switch v := v.(type) {
		case Price:
			if !v.set {
				add("%s.usd: required: the price in US dollars", path)
			} else if v.USD < 0 {
				add("%s.usd: %v: a price cannot be negative", path, v.USD)
			}
			checkSource(path, v.Source, add)
		case Guide:
			if !v.set || v.Value <= 0 {
				add("%s.value: %v: required, above 0", path, v.Value)
			}
			checkSource(path, v.Source, add)
		}
	})
	return errors.Join(errs...)
}

func checkSource(path, src string, add func(string, ...any)) {
	u, err := url.Parse(src)
	if src == "" {
		add("%s.source: required: the URL of the page the number was read from", path)
	} else if err != nil || u.Scheme != "https" || u.Host == "" {
		add("%s.source: %q: want an https:// URL of the page the number was read from", path, src)
	}
}

// walkPrices calls fn with the YAML path of every Price and Guide in v.
func walkPrices(v reflect.Value, path string, fn func(string, any)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		switch fv := v.Field(i); fv.Interface().(type) {
		case Price, Guide:
			fn(p, fv.Interface())
		default:
			if fv.Kind() == reflect.Struct {
				walkPrices(fv, p, fn)
			}
		}
	}
}
