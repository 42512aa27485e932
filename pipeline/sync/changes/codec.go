package changes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Value tags of the spill-file row codec. Values are tagged by their dynamic
// Go type rather than by the field's pipeline.Type, so TypeAny fields and
// every declared type round-trip through the same code.
const (
	tagNil byte = iota
	tagString
	tagInt64
	tagInt
	tagFloat64
	tagFalse
	tagTrue
	tagTime
	tagBytes
)

// Zone kinds of an encoded time.Time.
const (
	zoneUTC   byte = 0 // Location() == time.UTC (dates, UTC timestamps)
	zoneFixed byte = 1 // any other location, kept as offset + abbreviation
)

// errUnsupported is wrapped when a row holds a value of a Go type the codec
// does not know.
var errUnsupported = errors.New("unsupported value type")

// objectTable numbers the origin objects (file names) of one Differ's
// rows, so that a spilled row holds a small number instead of the name
// (often a URL as long as half the row's values). Its memory grows with the
// number of files read, not of rows.
type objectTable struct {
	names   []string
	index   map[string]uint64
	last    string
	lastIdx uint64
}

// number returns the number of object name, adding it when new.
func (t *objectTable) number(name string) uint64 {
	if len(t.names) > 0 && name == t.last {
		return t.lastIdx
	}
	i, ok := t.index[name]
	if !ok {
		if t.index == nil {
			t.index = map[string]uint64{}
		}
		i = uint64(len(t.names))
		t.names = append(t.names, name)
		t.index[name] = i
	}
	t.last, t.lastIdx = name, i
	return i
}

// appendRow appends the spill encoding of origin and row to dst, the
// origin's object numbered in objs:
//
//	uvarint object number, varint line, varint row,
//	uvarint len(row), one tagged value per field
//
// A time.Time keeps its instant (Unix seconds and nanoseconds) and its zone:
// time.UTC stays time.UTC; any other location becomes a fixed zone with the
// same offset and abbreviation at that instant, so every text form
// (pipeline.AppendText, time.Format) is unchanged. A named location's
// daylight-saving rules are not kept, and a monotonic clock reading is
// dropped.
func appendRow(dst []byte, row pipeline.Row, origin pipeline.Origin, objs *objectTable) ([]byte, error) {
	dst = appendRowHeader(dst, row, origin, objs)
	for i, v := range row {
		var err error
		if dst, err = appendValue(dst, v); err != nil {
			return dst, fmt.Errorf("field %d: %w", i+1, err)
		}
	}
	return dst, nil
}

// appendRowHeader appends what precedes a row's values in its spill
// encoding (see appendRow): the origin and the number of values.
func appendRowHeader(dst []byte, row pipeline.Row, origin pipeline.Origin, objs *objectTable) []byte {
	dst = binary.AppendUvarint(dst, objs.number(origin.Object))
	dst = binary.AppendVarint(dst, origin.Line)
	dst = binary.AppendVarint(dst, origin.Row)
	return binary.AppendUvarint(dst, uint64(len(row)))
}

func appendValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, tagNil), nil
	case string:
		dst = append(dst, tagString)
		dst = binary.AppendUvarint(dst, uint64(len(x)))
		return append(dst, x...), nil
	case int64:
		return binary.AppendVarint(append(dst, tagInt64), x), nil
	case int:
		return binary.AppendVarint(append(dst, tagInt), int64(x)), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(dst, tagFloat64), math.Float64bits(x)), nil
	case bool:
		if x {
			return append(dst, tagTrue), nil
		}
		return append(dst, tagFalse), nil
	case time.Time:
		dst = append(dst, tagTime)
		dst = binary.AppendVarint(dst, x.Unix())
		dst = binary.AppendUvarint(dst, uint64(x.Nanosecond()))
		if x.Location() == time.UTC {
			return append(dst, zoneUTC), nil
		}
		name, off := x.Zone()
		dst = append(dst, zoneFixed)
		dst = binary.AppendVarint(dst, int64(off))
		dst = binary.AppendUvarint(dst, uint64(len(name)))
		return append(dst, name...), nil
	case []byte:
		dst = append(dst, tagBytes)
		dst = binary.AppendUvarint(dst, uint64(len(x)))
		return append(dst, x...), nil
	default:
		return dst, fmt.Errorf("%w %T (want string, int64, int, float64, bool, time.Time, []byte or nil)", errUnsupported, v)
	}
}

// rowDecoder decodes spill-encoded rows; objs is the table their origins'
// objects were numbered in.
type rowDecoder struct {
	objs *objectTable
}

// errShort is returned when an encoded row ends early.
var errShort = errors.New("encoded row is truncated")

// decode decodes a row encoded by appendRow. The returned row does not
// alias p.
func (dec *rowDecoder) decode(p []byte) (pipeline.Row, pipeline.Origin, error) {
	var o pipeline.Origin
	obj, p, err := readUvarint(p)
	if err != nil {
		return nil, o, err
	}
	if dec.objs == nil || obj >= uint64(len(dec.objs.names)) {
		return nil, o, fmt.Errorf("origin object number %d out of range", obj)
	}
	o.Object = dec.objs.names[obj]
	if o.Line, p, err = readVarint(p); err != nil {
		return nil, o, err
	}
	if o.Row, p, err = readVarint(p); err != nil {
		return nil, o, err
	}
	n, p, err := readUvarint(p)
	if err != nil {
		return nil, o, err
	}
	if n > uint64(len(p)) { // every value takes at least one byte
		return nil, o, errShort
	}
	row := make(pipeline.Row, n)
	for i := range row {
		if row[i], p, err = decodeValue(p); err != nil {
			return nil, o, fmt.Errorf("field %d: %w", i+1, err)
		}
	}
	if len(p) != 0 {
		return nil, o, fmt.Errorf("%d bytes after the last field", len(p))
	}
	return row, o, nil
}

func decodeValue(p []byte) (any, []byte, error) {
	if len(p) == 0 {
		return nil, p, errShort
	}
	tag, p := p[0], p[1:]
	switch tag {
	case tagNil:
		return nil, p, nil
	case tagString:
		b, p, err := readBytes(p)
		return string(b), p, err
	case tagBytes:
		b, p, err := readBytes(p)
		return append([]byte{}, b...), p, err
	case tagInt64:
		v, p, err := readVarint(p)
		return v, p, err
	case tagInt:
		v, p, err := readVarint(p)
		return int(v), p, err
	case tagFloat64:
		if len(p) < 8 {
			return nil, p, errShort
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(p)), p[8:], nil
	case tagFalse:
		return false, p, nil
	case tagTrue:
		return true, p, nil
	case tagTime:
		sec, p, err := readVarint(p)
		if err != nil {
			return nil, p, err
		}
		nsec, p, err := readUvarint(p)
		if err != nil {
			return nil, p, err
		}
		if nsec >= 1e9 {
			return nil, p, fmt.Errorf("time nanoseconds %d out of range", nsec)
		}
		if len(p) == 0 {
			return nil, p, errShort
		}
		kind, p := p[0], p[1:]
		t := time.Unix(sec, int64(nsec))
		switch kind {
		case zoneUTC:
			return t.UTC(), p, nil
		case zoneFixed:
			off, p, err := readVarint(p)
			if err != nil {
				return nil, p, err
			}
			name, p, err := readBytes(p)
			if err != nil {
				return nil, p, err
			}
			if off < math.MinInt32 || off > math.MaxInt32 {
				return nil, p, fmt.Errorf("zone offset %d out of range", off)
			}
			return t.In(time.FixedZone(string(name), int(off))), p, nil
		default:
			return nil, p, fmt.Errorf("unknown zone kind %d", kind)
		}
	default:
		return nil, p, fmt.Errorf("unknown value tag %d", tag)
	}
}

func readUvarint(p []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, p, errShort
	}
	return v, p[n:], nil
}

func readVarint(p []byte) (int64, []byte, error) {
	v, n := binary.Varint(p)
	if n <= 0 {
		return 0, p, errShort
	}
	return v, p[n:], nil
}

func readBytes(p []byte) ([]byte, []byte, error) {
	n, p, err := readUvarint(p)
	if err != nil {
		return nil, p, err
	}
	if n > uint64(len(p)) {
		return nil, p, errShort
	}
	return p[:n], p[n:], nil
}

// appendRowHash is appendRow that also returns the row's hash,
// rowHash(appendCanonical(row)), without writing the canonical text: for a
// null or a string the spill encoding of the value is byte for byte its
// canonical text (tagNil is 0x00, tagString 0x01 and both prefix a string
// with its uvarint length), so d hashes the encoding in place, run by run
// of such values, and only the canonical text of every other value (a
// bool, a number, a time) is written, to scratch, and hashed between the
// runs. A row of strings is hashed in one call over its encoding. The
// digest's streaming sum is the one-shot sum of the concatenation
// (TestAppendRowHash checks both results against appendRow and
// appendCanonical).
func appendRowHash(dst []byte, row pipeline.Row, origin pipeline.Origin, objs *objectTable, d *xxhash.Digest, scratch []byte) ([]byte, uint64, []byte, error) {
	dst = appendRowHeader(dst, row, origin, objs)
	d.Reset()
	run := len(dst) // the start of the run of values encoded as their canonical text
	for i, v := range row {
		if x, ok := v.(string); ok { // most values: appendValue's encoding, inline
			if len(x) < 0x80 {
				dst = append(dst, tagString, byte(len(x)))
			} else {
				dst = binary.AppendUvarint(append(dst, tagString), uint64(len(x)))
			}
			dst = append(dst, x...)
			continue // encoded as its canonical text: hashed with its run
		}
		mark := len(dst)
		var err error
		if dst, err = appendValue(dst, v); err != nil {
			return dst, 0, scratch, fmt.Errorf("field %d: %w", i+1, err)
		}
		if v == nil {
			continue // encoded as its canonical text: hashed with its run
		}
		d.Write(dst[run:mark])
		run = len(dst)
		// The canonical text: 0x01, uvarint length, pipeline.AppendText.
		scratch = pipeline.AppendText(scratch[:0], v)
		var head [1 + binary.MaxVarintLen64]byte
		head[0] = 1
		n := 1 + binary.PutUvarint(head[1:], uint64(len(scratch)))
		d.Write(head[:n])
		d.Write(scratch)
	}
	d.Write(dst[run:])
	return dst, hashValue(d.Sum64()), scratch, nil
}

// appendCanonical appends the canonical text of a row, the input of its
// hash: for each field either 0x00 (null) or 0x01, uvarint len(text), text,
// where text is pipeline.AppendText of the value. The length prefix is the
// separator: unlike a delimiter byte it cannot occur inside a value, so
// ("a","bc") and ("ab","c") differ, and the marker keeps null apart from "".
func appendCanonical(dst []byte, row pipeline.Row, scratch []byte) ([]byte, []byte) {
	for _, v := range row {
		switch x := v.(type) {
		case nil:
			dst = append(dst, 0)
			continue
		case string: // most values: their text is themselves, no copy to scratch
			dst = append(dst, 1)
			dst = binary.AppendUvarint(dst, uint64(len(x)))
			dst = append(dst, x...)
			continue
		}
		scratch = pipeline.AppendText(scratch[:0], v)
		dst = append(dst, 1)
		dst = binary.AppendUvarint(dst, uint64(len(scratch)))
		dst = append(dst, scratch...)
	}
	return dst, scratch
}

// rowHash returns the xxhash64 of canonical row text, with 0 (reserved for
// "unsynced") mapped to 1.
func rowHash(canonical []byte) uint64 { return hashValue(xxhash.Sum64(canonical)) }

// hashValue maps an xxhash64 sum to a row hash: 0, reserved for "unsynced",
// becomes 1.
func hashValue(h uint64) uint64 {
	if h == unsynced {
		return 1
	}
	return h
}
