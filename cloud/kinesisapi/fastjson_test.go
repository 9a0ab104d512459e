package kinesisapi

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodePutRecords: whenever the fast decoder accepts a body,
// encoding/json must accept it too and decode the same request.
func FuzzDecodePutRecords(f *testing.F) {
	for _, s := range []string{
		`{"StreamName":"s","Records":[{"Data":"aGVsbG8=","PartitionKey":"k"},{"PartitionKey":"k2","ExplicitHashKey":"1","Data":""}]}`,
		`{ "Records" : [ { "Data" : null , "PartitionKey" : null } ] , "StreamARN" : "arn:aws:kinesis:us-east-1:000000000000:stream/s" }`,
		`{"Records":[]}`, `{}`, `{"Records":null,"StreamName":null}`, `{"Records":[{}]}`,
		`{"StreamName":"s\u00e9"}`, `{"StreamName":"s","StreamName":"t"}`, `{"Records":[{"Data":"!!"}]}`,
		`{"Records":[{"Data":"aGVsbG8"}]}`, `{"StreamName":"é"}`, "{\"StreamName\":\"\xff\"}", `{"Extra":1}`, ` {"StreamName":"s"} `, `{"StreamName":"s"}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodePutRecords(b)
		if !ok {
			return
		}
		var slow putRecordsReq
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast decoder accepted %q, encoding/json: %v", b, err)
		}
		if !reflect.DeepEqual(normal(fast), normal(slow)) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", b, fast, slow)
		}
	})
}

// normal maps empty and nil slices alike (the one difference that does
// not matter: Data "" decodes to an empty slice either way, and a nil
// Records is absent either way).
func normal(r putRecordsReq) putRecordsReq {
	for i := range r.Records {
		if d := r.Records[i].Data; d != nil && len(*d) == 0 {
			e := []byte{}
			r.Records[i].Data = &e
		}
	}
	return r
}

func TestDecodePutRecordsMatchesSeeds(t *testing.T) {
	body := `{"StreamName":"s","Records":[{"Data":"aGVsbG8=","PartitionKey":"k"},{"PartitionKey":"k2","ExplicitHashKey":"1","Data":""}]}`
	r, ok := decodePutRecords([]byte(body))
	if !ok || *r.StreamName != "s" || len(r.Records) != 2 || string(*r.Records[0].Data) != "hello" || *r.Records[1].ExplicitHashKey != "1" || len(*r.Records[1].Data) != 0 {
		t.Fatalf("%v %+v", ok, r)
	}
	for _, fallback := range []string{`{"StreamName":"s\u00e9"}`, `{"StreamName":"s","StreamName":"t"}`, `{"Records":[{"Data":"!!"}]}`, `{"Extra":1}`, `{"StreamName":"s"}x`, `[]`, ``} {
		if _, ok := decodePutRecords([]byte(fallback)); ok {
			t.Errorf("fast decoder accepted %q", fallback)
		}
	}
}
