package protocol

import (
	"math"
	"math/bits"
)

// resolver carries base fields from record to record (RFC 8428 section 4.6)
// and turns each raw record into a resolved Reading.
type resolver struct {
	opts     *DecodeOptions
	bn, bu   string
	bt       float64
	btUs     int64
	bv, bs   float64
	gw       string
	firstBn  string // the first record's bn
	lastName string // the most recent resolved name, reused to avoid an allocation
}

// apply resolves record i and appends its reading to dst, if it yields one.
// The steps run in a fixed order, so a record with several faults always
// reports the same one.
func (res *resolver) apply(i int, raw *rawRecord, dst []Reading) ([]Reading, error) {
	if err := res.applyBase(i, raw); err != nil {
		return dst, err
	}
	if ok, err := carriesValue(i, raw); !ok {
		return dst, err
	}
	name, err := res.name(i, raw)
	if err != nil {
		return dst, err
	}
	o := res.opts
	r := Reading{Device: o.Device, Name: name, Unit: res.bu, Received: o.Now, Flags: o.Flags}
	if err := res.value(i, raw, &r); err != nil {
		return dst, err
	}
	if err := res.time(i, raw, &r); err != nil {
		return dst, err
	}
	if o.stream {
		if err := streamFields(i, raw, &r); err != nil {
			return dst, err
		}
	}
	return append(dst, r), nil
}

// applyBase checks the version and takes the record's base fields (and the
// pack's gateway, on the first record of a stream record).
func (res *resolver) applyBase(i int, raw *rawRecord) error {
	if raw.has&bit(labelBver) != 0 {
		if raw.bver < 1 || raw.bver > senmlVersion {
			return senmlErr(i, "bver", ErrVersion, "version %d; this receiver implements SenML version %d (RFC 8428)", raw.bver, senmlVersion)
		}
	}
	if raw.has&bit(labelBn) != 0 {
		res.bn = raw.bn
	}
	if raw.has&bit(labelBt) != 0 {
		res.bt = raw.bt
		res.btUs = microsFromSeconds(raw.bt)
	}
	if raw.has&bit(labelBu) != 0 {
		res.bu = raw.bu
	}
	if raw.has&bit(labelBv) != 0 {
		res.bv = raw.bv
	}
	if raw.has&bit(labelBs) != 0 {
		res.bs = raw.bs
	}
	if i == 0 {
		res.firstBn = raw.bn
	}
	if raw.has&bitGw != 0 {
		if i != 0 {
			return senmlErr(i, labelGw, ErrBadRecord, "gateway label only allowed on the first record")
		}
		res.gw = raw.gw
	}
	return nil
}

// carriesValue reports whether the record yields a reading: it carries at
// most one value, and a value or a sum. RFC 8428 lets a record carry only
// base fields (e.g. a lone bn): such a record yields no reading and no
// error; a record with a name but nothing to say is an error.
func carriesValue(i int, raw *rawRecord) (bool, error) {
	const valueBits = 1<<(labelV+8) | 1<<(labelVs+8) | 1<<(labelVb+8) | 1<<(labelVd+8) // see bit
	values := bits.OnesCount32(raw.has & valueBits)
	if values == 1 || values == 0 && raw.has&bit(labelS) != 0 {
		return true, nil
	}
	return false, noValueErr(i, raw, values)
}

// noValueErr is carriesValue's answer for a record with several values or
// none (nil for a record of base fields only).
func noValueErr(i int, raw *rawRecord, values int) error {
	if values > 1 {
		return senmlErr(i, "", ErrMultipleValues, "a record carries at most one of v, vs, vb, vd")
	}
	if raw.has&(bit(labelN)|bit(labelU)|bit(labelT)) != 0 {
		return senmlErr(i, "", ErrNoValue, "add one of v, vs, vb, vd or s")
	}
	return nil
}

// name resolves and checks bn + n.
func (res *resolver) name(i int, raw *rawRecord) (string, error) {
	name := res.bn + raw.n
	if name == res.lastName {
		name = res.lastName
	}
	if !ValidName(name) {
		label := "n"
		if raw.n == "" {
			label = "bn"
		}
		if name == "" {
			return "", senmlErr(i, label, ErrBadName, "resolved name is empty: set n or bn")
		}
		return "", senmlErr(i, label, ErrBadName, "resolved name %q: use 1-%d characters from A-Z a-z 0-9 - : . / _, starting with a letter or digit", truncate(name), MaxNameBytes)
	}
	res.lastName = name
	return name, nil
}

// value resolves the unit, the value (bv + v) and the sum (bs + s).
func (res *resolver) value(i int, raw *rawRecord, r *Reading) error {
	if raw.has&bit(labelU) != 0 {
		r.Unit = raw.u
	}
	if len(r.Unit) > MaxUnitBytes {
		return senmlErr(i, "u", ErrTooLarge, "unit is %d bytes, limit %d", len(r.Unit), MaxUnitBytes)
	}
	switch {
	case raw.has&bit(labelV) != 0:
		r.Kind, r.Value = KindFloat, res.bv+raw.v
		if !finite(r.Value) {
			return senmlErr(i, "v", ErrBadNumber, "")
		}
	case raw.has&bit(labelVs) != 0:
		r.Kind, r.Str = KindString, raw.vs
	case raw.has&bit(labelVb) != 0:
		r.Kind, r.Bool = KindBool, raw.vb
	case raw.has&bit(labelVd) != 0:
		r.Kind, r.Data = KindData, raw.vd
	}
	if raw.has&bit(labelS) != 0 {
		r.HasSum, r.Sum = true, res.bs+raw.s
		if !finite(r.Sum) {
			return senmlErr(i, "s", ErrBadNumber, "")
		}
	}
	return nil
}

// time resolves bt + t in µs. A resolved time below RelativeTimeLimit is
// relative to the receiver's clock (refused in stream records).
func (res *resolver) time(i int, raw *rawRecord, r *Reading) error {
	if math.Abs(res.bt) >= maxTimeSeconds || math.Abs(raw.t) >= maxTimeSeconds {
		return senmlErr(i, "t", ErrBadNumber, "time out of range (|bt|, |t| < 2^32 s)")
	}
	t := res.btUs
	if raw.has&bit(labelT) != 0 {
		t += microsFromSeconds(raw.t)
	}
	const relLimit = RelativeTimeLimit * 1_000_000
	if t < relLimit {
		if res.opts.stream {
			return senmlErr(i, "t", ErrBadRecord, "stream record times are absolute")
		}
		t = res.opts.Now + t
		r.Flags |= FlagReceiverTime
		if t < relLimit {
			return senmlErr(i, "t", ErrBadNumber, "relative time resolves to before 2^28 s (1978)")
		}
	}
	if t >= MaxTimeMicros {
		return senmlErr(i, "t", ErrBadNumber, "resolved time out of range")
	}
	r.Time = t
	return nil
}

// streamFields takes a stream record's receive time and flags.
func streamFields(i int, raw *rawRecord, r *Reading) error {
	if raw.has&bitRt == 0 {
		return senmlErr(i, labelRt, ErrBadRecord, "every stream record carries rt")
	}
	if raw.fl > 0xff {
		return senmlErr(i, labelFl, ErrBadRecord, "flags out of range")
	}
	if math.Abs(raw.rt) >= maxTimeSeconds {
		return senmlErr(i, labelRt, ErrBadNumber, "receive time out of range")
	}
	r.Received = microsFromSeconds(raw.rt)
	r.Flags = Flags(raw.fl)
	return nil
}
