package shardstore_test

import (
	"crypto/md5"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

func TestHashKeyText(t *testing.T) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	cases := []string{"0", "1", "9", "10", "18446744073709551615", "18446744073709551616", "99999999999999999999", max.String()}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		v := new(big.Int).SetUint64(r.Uint64())
		v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(r.Uint64()))
		v.Rsh(v, uint(r.IntN(128)))
		cases = append(cases, v.String())
	}
	for _, c := range cases {
		h, err := shardstore.ParseHashKey(c)
		if err != nil {
			t.Fatalf("ParseHashKey(%s): %v", c, err)
		}
		if h.String() != c {
			t.Fatalf("round trip %s → %s", c, h.String())
		}
	}
	if shardstore.MaxHashKey.String() != max.String() {
		t.Fatalf("MaxHashKey = %s", shardstore.MaxHashKey)
	}
	for _, bad := range []string{"", "-1", "01", "1.5", "a", "340282366920938463463374607431768211456", "9999999999999999999999999999999999999999"} {
		if _, err := shardstore.ParseHashKey(bad); err == nil {
			t.Errorf("ParseHashKey(%q) succeeded", bad)
		}
	}
}

func TestHashPartitionKeyIsMD5(t *testing.T) {
	for _, k := range []string{"a", "device-1", "ünïcödé", "x"} {
		sum := md5.Sum([]byte(k))
		want := new(big.Int).SetBytes(sum[:]).String()
		if got := shardstore.HashPartitionKey(k).String(); got != want {
			t.Errorf("HashPartitionKey(%q) = %s, want %s", k, got, want)
		}
	}
}

func TestSequenceNumberFormat(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		sn := shardstore.SequenceNumber{Position: uint64(i) * (r.Uint64() >> 40), Shard: r.Uint32()}
		if i%3 == 0 {
			sn.Position = r.Uint64()
		}
		s := sn.String()
		if len(s) != 38 {
			t.Fatalf("%+v → %s: %d digits, want 38", sn, s, len(s))
		}
		got, err := shardstore.ParseSequenceNumber(s)
		if err != nil || got != sn {
			t.Fatalf("ParseSequenceNumber(%s) = %+v, %v; want %+v", s, got, err, sn)
		}
		want := new(big.Int).Lsh(big.NewInt(1), 124)
		want.Add(want, new(big.Int).Lsh(new(big.Int).SetUint64(sn.Position), 60))
		want.Add(want, new(big.Int).Lsh(new(big.Int).SetUint64(uint64(sn.Shard)), 28))
		if want.String() != s {
			t.Fatalf("%+v → %s, want %s", sn, s, want)
		}
	}
	// Numeric order is position order within a shard, and string order
	// agrees with numeric order.
	a := shardstore.SequenceNumber{Position: 7, Shard: 3}.String()
	b := shardstore.SequenceNumber{Position: 8, Shard: 0}.String()
	if !(a < b) {
		t.Fatalf("%s !< %s", a, b)
	}
	for _, bad := range []string{"1", "49590338271490256608559692538361571095921575989136588898", "21267647932558653966460912964485513217", "0"} {
		if _, err := shardstore.ParseSequenceNumber(bad); err == nil {
			t.Errorf("ParseSequenceNumber(%s) succeeded", bad)
		}
	}
}

func TestShardID(t *testing.T) {
	if id := shardstore.ShardID(7); id != "shardId-000000000007" {
		t.Fatal(id)
	}
	for id, want := range map[string]int64{"shardId-000000000007": 7, "shardId-1": 1, "shardId-": -1, "shard-1": -1, "shardId-00000000000x": -1, "shardId-0000000000001": -1} {
		got, ok := shardstore.ParseShardID(id)
		if !ok && want != -1 || ok && int64(got) != want {
			t.Errorf("ParseShardID(%q) = %d, %v", id, got, ok)
		}
	}
}
