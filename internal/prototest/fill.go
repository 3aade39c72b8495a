package prototest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Filling messages by reflection over their descriptors, for tests that compare a hand-written
// codec with the protobuf library: every field the descriptor has is set, so a field added to
// the .proto later is set too, and a codec that does not know it disagrees with the library.

// Variant is one filled message and the oneof cases it took, e.g.
// "kind=delta delta.body=quote" ("-" for a oneof left unset).
type Variant struct {
	Name string
	Msg  proto.Message
}

// maxDepth bounds the recursion through message fields (a recursive message stops there).
const maxDepth = 8

// maxVariants bounds the oneof combinations of one message type.
const maxVariants = 4096

// Variants returns one message of m's type for each combination of the oneof cases reachable
// from it, each case of each oneof in turn (and the oneof unset): a oneof inside a chosen case
// multiplies out, so ServerMessage gives a variant for every kind and, within delta and
// snapshot, every body. All the other fields are filled as Fill fills them. m itself is not
// changed. The same combination applies to every element of a repeated field.
func Variants(m proto.Message, r *rand.Rand, sparse bool) []Variant {
	md := m.ProtoReflect().Descriptor()
	ps := plans(md, "", 0)
	if len(ps) > maxVariants {
		panic(fmt.Sprintf("prototest: %s has %d oneof combinations", md.FullName(), len(ps)))
	}
	out := make([]Variant, 0, len(ps))
	for _, p := range ps {
		msg := m.ProtoReflect().Type().New()
		f := filler{r: r, sparse: sparse, plan: p}
		f.fill(msg, "", 0)
		out = append(out, Variant{Name: p.String(), Msg: msg.Interface()})
	}
	return out
}

// Fill sets every field of m (cleared first) to a varied non-zero value drawn from r, messages
// recursively, repeated fields and maps with two to four elements; each oneof takes a case
// drawn from r. With sparse, each field outside a oneof is left unset one time in three
// (codecs that skip zero fields get both forms).
func Fill(m proto.Message, r *rand.Rand, sparse bool) {
	proto.Reset(m)
	f := filler{r: r, sparse: sparse}
	f.fill(m.ProtoReflect(), "", 0)
}

// plan maps the path of a oneof ("kind", "delta.body") to the case chosen ("" for unset).
type plan map[string]protoreflect.Name

func (p plan) String() string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := string(p[k])
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(&b, "%s=%s", k, v)
	}
	return b.String()
}

func join(path string, name protoreflect.Name) string {
	if path == "" {
		return string(name)
	}
	return path + "." + string(name)
}

// cross returns every union of one plan of a with one plan of b.
func cross(a, b []plan) []plan {
	out := make([]plan, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			p := make(plan, len(x)+len(y))
			for k, v := range x {
				p[k] = v
			}
			for k, v := range y {
				p[k] = v
			}
			out = append(out, p)
		}
	}
	if len(out) > maxVariants {
		panic(fmt.Sprintf("prototest: more than %d oneof combinations", maxVariants))
	}
	return out
}

// plans lists the oneof combinations of md, whose fields are at path.
func plans(md protoreflect.MessageDescriptor, path string, depth int) []plan {
	out := []plan{{}}
	if depth >= maxDepth {
		return out
	}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
			continue
		}
		if fd.Message() != nil && !fd.IsMap() {
			out = cross(out, plans(fd.Message(), join(path, fd.Name()), depth+1))
		}
	}
	oneofs := md.Oneofs()
	for i := range oneofs.Len() {
		o := oneofs.Get(i)
		if o.IsSynthetic() {
			continue
		}
		key := join(path, o.Name())
		alts := []plan{{key: ""}}
		ofs := o.Fields()
		for j := range ofs.Len() {
			fd := ofs.Get(j)
			sub := []plan{{}}
			if fd.Message() != nil {
				sub = plans(fd.Message(), join(path, fd.Name()), depth+1)
			}
			alts = append(alts, cross([]plan{{key: fd.Name()}}, sub)...)
		}
		out = cross(out, alts)
	}
	return out
}

type filler struct {
	r      *rand.Rand
	sparse bool
	plan   plan // oneof cases; those it lacks are drawn from r
}

func (f *filler) fill(m protoreflect.Message, path string, depth int) {
	md := m.Descriptor()
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
			if f.chosen(o, path) != fd.Name() {
				continue
			}
		} else if f.sparse && f.r.IntN(3) == 0 {
			continue
		}
		f.set(m, fd, join(path, fd.Name()), depth)
	}
}

// chosen returns the case of o to set.
func (f *filler) chosen(o protoreflect.OneofDescriptor, path string) protoreflect.Name {
	if c, ok := f.plan[join(path, o.Name())]; ok {
		return c
	}
	n := o.Fields().Len()
	if k := f.r.IntN(n + 1); k < n {
		return o.Fields().Get(k).Name()
	}
	return ""
}

func (f *filler) set(m protoreflect.Message, fd protoreflect.FieldDescriptor, path string, depth int) {
	switch {
	case fd.IsMap():
		mp := m.Mutable(fd).Map()
		for range 2 + f.r.IntN(3) {
			k := f.scalar(fd.MapKey()).MapKey()
			if fd.MapValue().Message() != nil {
				v := mp.NewValue()
				f.fill(v.Message(), path, depth+1)
				mp.Set(k, v)
			} else {
				mp.Set(k, f.scalar(fd.MapValue()))
			}
		}
	case fd.IsList():
		l := m.Mutable(fd).List()
		for range 2 + f.r.IntN(3) {
			if fd.Message() != nil {
				v := l.NewElement()
				f.fill(v.Message(), path, depth+1)
				l.Append(v)
			} else {
				l.Append(f.scalar(fd))
			}
		}
	case fd.Message() != nil:
		if depth+1 < maxDepth {
			f.fill(m.Mutable(fd).Message(), path, depth+1)
		}
	default:
		m.Set(fd, f.scalar(fd))
	}
}

// Values of each kind, never zero; the edges of each range and multi-byte varints are common.

func (f *filler) int64() int64 {
	for {
		if v := EdgeInt64(f.r); v != 0 {
			return v
		}
	}
}

func (f *filler) int32() int32 {
	switch f.r.IntN(5) {
	case 0:
		return math.MinInt32 + f.r.Int32N(10)
	case 1:
		return math.MaxInt32 - f.r.Int32N(10)
	case 2:
		return -1 - f.r.Int32N(1<<20) // ten bytes as a plain varint
	case 3:
		return 1 + f.r.Int32N(127)
	}
	return 1 + f.r.Int32N(1<<28)
}

func (f *filler) uint64() uint64 {
	switch f.r.IntN(4) {
	case 0:
		return math.MaxUint64 - f.r.Uint64N(10)
	case 1:
		return 1 + f.r.Uint64N(127)
	case 2:
		return 1<<63 | f.r.Uint64()
	}
	return 1 + f.r.Uint64N(1<<40)
}

func (f *filler) uint32() uint32 {
	switch f.r.IntN(4) {
	case 0:
		return math.MaxUint32 - f.r.Uint32N(10)
	case 1:
		return 1 + f.r.Uint32N(127)
	}
	return 1 + f.r.Uint32N(1<<30)
}

var words = []string{"coinbase:BTC-USD", "synthetic:A", "kraken:XBT/€", "ü", "t-12345", "日本:株"}

func (f *filler) string() string {
	s := words[f.r.IntN(len(words))]
	if f.r.IntN(4) == 0 { // a length of two varint bytes
		s = strings.Repeat(s, 1+128/len(s))
	}
	return s
}

func (f *filler) scalar(fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		var nonzero []protoreflect.EnumNumber
		for i := range vals.Len() {
			if n := vals.Get(i).Number(); n != 0 {
				nonzero = append(nonzero, n)
			}
		}
		if len(nonzero) == 0 {
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(1 + f.r.Int32N(100)))
		}
		return protoreflect.ValueOfEnum(nonzero[f.r.IntN(len(nonzero))])
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(f.int32())
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(f.int64())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(f.uint32())
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(f.uint64())
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(f.int32()) / 7)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(f.int64()) / 7)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(f.string())
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(f.string()))
	}
	panic(fmt.Sprintf("prototest: field %s of kind %v", fd.FullName(), fd.Kind()))
}
