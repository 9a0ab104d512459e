package protocol

import "errors"

// SenML-CBOR (RFC 8428 section 6): an array of maps with integer labels.

// decodeCBORPack decodes a SenML-CBOR pack and appends its readings to dst.
func decodeCBORPack(dst []Reading, b []byte, opts *DecodeOptions) ([]Reading, packInfo, error) {
	var p packDecoder
	if err := p.init(dst, b, opts); err != nil {
		return dst, packInfo{}, err
	}
	r := reader{b: b}
	n, err := r.containerLen(majorArray)
	if err != nil {
		return p.fail(senmlErr(-1, "", ErrSyntax, "a SenML-CBOR pack is an array of maps"))
	}
	if n == 0 {
		return p.fail(errNoRecords())
	}
	stream := p.opts.stream
	for i := 0; n < 0 || i < n; i++ {
		if n < 0 && r.peekBreak() {
			if i == 0 {
				return p.fail(errNoRecords())
			}
			break
		}
		raw, err := p.next(i)
		if err == nil {
			err = decodeCBORRecord(&r, i, raw, stream)
		}
		if err == nil {
			err = p.resolve(i)
		}
		if err != nil {
			return p.fail(err)
		}
	}
	if !r.done() {
		return p.fail(senmlErr(-1, "", ErrSyntax, "%d bytes after the end of the pack", len(b)-r.off))
	}
	return p.finish()
}

func decodeCBORRecord(r *reader, i int, raw *rawRecord, stream bool) error {
	n, err := r.containerLen(majorMap)
	if err != nil {
		return senmlErr(i, "", ErrSyntax, "a record is a CBOR map")
	}
	for k := 0; n < 0 || k < n; k++ {
		if n < 0 && r.peekBreak() {
			break
		}
		key, text, isText, err := r.key()
		if err != nil {
			return senmlErr(i, "", ErrSyntax, "map key is neither an integer label nor a text label")
		}
		if isText {
			if err := decodeCBORExtension(r, i, raw, string(text), stream); err != nil {
				return err
			}
			continue
		}
		name, known := labelName(key)
		if !known {
			if err := r.skip(0); err != nil {
				return senmlErr(i, "", ErrSyntax, "label %d: value is malformed", key)
			}
			continue
		}
		label := int(key)
		if !raw.mark(label) {
			return senmlErr(i, name, ErrDuplicateLabel, "")
		}
		var s []byte
		switch typeOf(label) {
		case typeText:
			if s, err = r.str(true); err == nil {
				raw.setText(label, s)
			}
		case typeBytes:
			if s, err = r.str(false); err == nil {
				raw.vd = append(make([]byte, 0, len(s)), s...)
			}
		case typeBool:
			raw.vb, err = r.bool()
		case typeInt:
			raw.bver, err = r.int()
		default:
			var f float64
			if f, err = number(r); err == nil {
				raw.setNumber(label, f)
			}
		}
		if err != nil || len(s) > MaxStringValueBytes {
			return cborValueErr(i, label, name, err, len(s))
		}
	}
	return nil
}

// cborValueErr is the error for a label's value that did not decode (err)
// or is too long (size).
func cborValueErr(i, label int, name string, err error, size int) error {
	switch {
	case err == nil:
		return senmlErr(i, name, ErrTooLarge, "%d bytes, limit %d", size, MaxStringValueBytes)
	case errors.Is(err, errType):
		return senmlErr(i, name, ErrType, "want %s", typeOf(label))
	case errors.Is(err, errRange), errors.Is(err, errBadNumber):
		return senmlErr(i, name, ErrBadNumber, "")
	}
	return senmlErr(i, name, ErrSyntax, "value is malformed")
}

var errBadNumber = ErrBadNumber

// number reads a finite CBOR number.
func number(r *reader) (float64, error) {
	f, err := r.number(false)
	if err != nil {
		return 0, err
	}
	if !finite(f) {
		return 0, errBadNumber
	}
	return f, nil
}

// decodeCBORExtension reads a text label: a stream record label, or an
// unknown one (skipped unless it must be understood).
func decodeCBORExtension(r *reader, i int, raw *rawRecord, key string, stream bool) error {
	if stream && isStreamLabel(key) {
		var err error
		switch key {
		case labelGw:
			var s []byte
			s, err = r.str(true)
			raw.gw, raw.has = string(s), raw.has|bitGw
		case labelRt:
			raw.rt, err = number(r)
			raw.has |= bitRt
		case labelFl:
			raw.fl, err = r.uint()
			raw.has |= bitFl
		}
		if err != nil {
			return senmlErr(i, key, ErrType, "extension label has the wrong type")
		}
		return nil
	}
	if err := unknownExtension(i, key); err != nil {
		return err
	}
	if err := r.skip(0); err != nil {
		return senmlErr(i, key, ErrSyntax, "value is malformed")
	}
	return nil
}

// AppendSenMLCBOR encodes readings as a SenML-CBOR pack and appends it to
// dst. Times are written as bt (the first reading's time) plus a
// per-record offset t, so every resolved time is absolute; a reading with
// Time 0 gets no time (the receiver's clock applies), and then no bt is
// used.
func AppendSenMLCBOR(dst []byte, rs []Reading, o *EncodeOptions) []byte {
	if o == nil {
		o = &EncodeOptions{}
	}
	bt, useBt := packTimes(rs)
	dst = appendHead(dst, majorArray, uint64(len(rs)))
	for i := range rs {
		dst = appendCBORRecord(dst, &rs[i], i == 0, bt, useBt, o)
	}
	return dst
}

// EncodeSenMLCBOR is AppendSenMLCBOR into a new slice.
func EncodeSenMLCBOR(rs []Reading, o *EncodeOptions) []byte {
	return AppendSenMLCBOR(nil, rs, o)
}

// appendCBORRecord encodes one record of a pack.
func appendCBORRecord(dst []byte, r *Reading, first bool, bt int64, useBt bool, o *EncodeOptions) []byte {
	fields := 2 // n + value
	if r.Kind == KindNone {
		fields = 1
	}
	if r.Unit != "" {
		fields++
	}
	if r.HasSum {
		fields++
	}
	withT := r.Time != 0 && (!useBt || r.Time != bt)
	if withT {
		fields++
	}
	if first && o.BaseName != "" {
		fields++
	}
	if first && useBt {
		fields++
	}
	if o.stream {
		fields++ // rt
		if first && o.gateway != "" {
			fields++
		}
		if r.Flags != 0 {
			fields++
		}
	}
	dst = appendHead(dst, majorMap, uint64(fields))
	if first && o.BaseName != "" {
		dst = appendInt(dst, labelBn)
		dst = appendText(dst, o.BaseName)
	}
	if first && useBt {
		dst = appendInt(dst, labelBt)
		dst = appendFloat64(dst, secondsFromMicros(bt))
	}
	if first && o.stream && o.gateway != "" {
		dst = appendText(dst, labelGw)
		dst = appendText(dst, o.gateway)
	}
	dst = appendInt(dst, labelN)
	dst = appendText(dst, r.Name)
	if r.Unit != "" {
		dst = appendInt(dst, labelU)
		dst = appendText(dst, r.Unit)
	}
	if label, ok := valueLabel(r.Kind); ok {
		dst = appendInt(dst, int64(label))
		dst = appendValue(dst, r, false)
	}
	if r.HasSum {
		dst = appendInt(dst, labelS)
		dst = appendNumber(dst, r.Sum)
	}
	if withT {
		dst = appendInt(dst, labelT)
		if useBt {
			dst = appendNumber(dst, float64(r.Time-bt)/1e6)
		} else {
			dst = appendFloat64(dst, secondsFromMicros(r.Time))
		}
	}
	if o.stream {
		dst = appendText(dst, labelRt)
		dst = appendFloat64(dst, secondsFromMicros(r.Received))
		if r.Flags != 0 {
			dst = appendText(dst, labelFl)
			dst = appendHead(dst, majorUint, uint64(r.Flags))
		}
	}
	return dst
}
