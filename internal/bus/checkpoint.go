package bus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The feed's state checkpoints (internal/feed, checkpoint.go) are kept in a JetStream stream of
// their own beside the event stream: CheckpointStream(events), subjects
// tickwire.checkpoint.<events>.<slot>, CheckpointSlots slots. A checkpoint is written to one
// slot's subject as chunks, the first published with a subject rollup (which drops the
// previous checkpoint of the slot: no purge or delete request, which no Tickwire user may make),
// then a head message naming the event-stream sequence, the chunk count and size. So the store
// holds at most CheckpointSlots checkpoints, and a slot whose last message is not a head holds
// an unfinished write. Two replicas writing the same slot at once interleave their chunks; the
// reader then finds a wrong count or the feed a wrong checksum, and takes another slot.
const CheckpointSlots = 3

// checkpointChunk bounds a chunk, below NATS's default max_payload of 1 MB.
const checkpointChunk = 256 << 10

// Checkpoint message headers.
const (
	hdrCheckpoint  = "Tickwire-Checkpoint" // "chunk" or "head"
	hdrCkptIndex   = "Tickwire-Checkpoint-Index"
	hdrCkptSeq     = "Tickwire-Checkpoint-Seq"
	hdrCkptChunks  = "Tickwire-Checkpoint-Chunks"
	hdrCkptSize    = "Tickwire-Checkpoint-Size"
	hdrCkptFirst   = "Tickwire-Checkpoint-First" // stream sequence of chunk 0 in the checkpoint stream
	hdrCkptTakenNs = "Tickwire-Checkpoint-Taken"
)

// CheckpointStream is the name of the stream holding the checkpoints of the event stream named
// events.
func CheckpointStream(events string) string { return events + "_CHECKPOINTS" }

func checkpointPrefix(events string) string { return "tickwire.checkpoint." + events + "." }

// checkpointSubjects is what the checkpoint stream of the event stream named events holds.
func checkpointSubjects(events string) string { return checkpointPrefix(events) + ">" }

// CheckpointInfo describes one complete checkpoint (its head).
type CheckpointInfo struct {
	Slot      int
	StreamSeq uint64 // the event-stream sequence its state is at
	Size      int
	Chunks    int
	Taken     time.Time
	first     uint64
}

// checkpointStore returns the checkpoint stream, creating it (with the event stream's replica
// count) when create is set; nil, nil when it is missing and create is not.
func (b *Bus) checkpointStore(ctx context.Context, create bool) (jetstream.Stream, error) {
	name := CheckpointStream(b.cfg.Stream)
	s, err := b.js.Stream(ctx, name)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("bus: checkpoint stream: %w", err)
	}
	if !create {
		return nil, nil
	}
	replicas := 1
	if ev, err := b.streamHandle(ctx); err == nil {
		replicas = max(1, ev.CachedInfo().Config.Replicas)
	}
	s, err = b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:              name,
		Description:       "Tickwire feed state checkpoints (internal/feed): the last few, one per slot subject",
		Subjects:          []string{checkpointSubjects(b.cfg.Stream)},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
		Replicas:          replicas,
		AllowRollup:       true,
		AllowDirect:       true,
		MaxMsgsPerSubject: -1,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = b.js.Stream(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: create checkpoint stream: %w", err)
	}
	return s, nil
}

// Checkpoints returns the complete checkpoints stored, newest (highest StreamSeq) first; none
// when the checkpoint stream does not exist.
func (b *Bus) Checkpoints(ctx context.Context) ([]CheckpointInfo, error) {
	s, err := b.checkpointStore(ctx, false)
	if err != nil || s == nil {
		return nil, err
	}
	var out []CheckpointInfo
	for slot := range CheckpointSlots {
		msg, err := s.GetLastMsgForSubject(ctx, checkpointPrefix(b.cfg.Stream)+strconv.Itoa(slot))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bus: checkpoint slot %d: %w", slot, err)
		}
		h := msg.Header
		if h.Get(hdrCheckpoint) != "head" {
			b.logger.Warn("checkpoint slot holds an unfinished write; skipped", "slot", slot)
			continue
		}
		ci := CheckpointInfo{Slot: slot}
		var e1, e2, e3, e4, e5 error
		ci.StreamSeq, e1 = strconv.ParseUint(h.Get(hdrCkptSeq), 10, 64)
		ci.Chunks, e2 = strconv.Atoi(h.Get(hdrCkptChunks))
		ci.Size, e3 = strconv.Atoi(h.Get(hdrCkptSize))
		ci.first, e4 = strconv.ParseUint(h.Get(hdrCkptFirst), 10, 64)
		taken, e5 := strconv.ParseInt(h.Get(hdrCkptTakenNs), 10, 64)
		if err := errors.Join(e1, e2, e3, e4, e5); err != nil || ci.Chunks < 1 {
			b.logger.Warn("checkpoint slot's head is unreadable; skipped", "slot", slot, "err", err)
			continue
		}
		ci.Taken = time.Unix(0, taken)
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StreamSeq > out[j].StreamSeq })
	return out, nil
}

// ReadCheckpoint returns the bytes of a checkpoint listed by Checkpoints. It fails when the
// slot no longer holds exactly that checkpoint's chunks (overwritten, or written by two at once).
func (b *Bus) ReadCheckpoint(ctx context.Context, ci CheckpointInfo) ([]byte, error) {
	s, err := b.checkpointStore(ctx, false)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("bus: no checkpoint stream")
	}
	cons, err := b.js.OrderedConsumer(ctx, CheckpointStream(b.cfg.Stream), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{checkpointPrefix(b.cfg.Stream) + strconv.Itoa(ci.Slot)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: ci.first,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: read checkpoint: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(16))
	if err != nil {
		return nil, fmt.Errorf("bus: read checkpoint: %w", err)
	}
	defer it.Stop()
	data := make([]byte, 0, ci.Size)
	for i := range ci.Chunks {
		msg, err := nextWithin(ctx, it, 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("bus: read checkpoint chunk %d of slot %d: %w", i, ci.Slot, err)
		}
		md, _ := msg.Metadata()
		h := msg.Headers()
		if h.Get(hdrCheckpoint) != "chunk" || h.Get(hdrCkptIndex) != strconv.Itoa(i) || h.Get(hdrCkptSeq) != strconv.FormatUint(ci.StreamSeq, 10) ||
			(i == 0 && (md == nil || md.Sequence.Stream != ci.first)) {
			return nil, fmt.Errorf("bus: checkpoint slot %d: message %d is not chunk %d of the checkpoint at %d (overwritten, or two writers at once)",
				ci.Slot, i, i, ci.StreamSeq)
		}
		data = append(data, msg.Data()...)
	}
	if len(data) != ci.Size {
		return nil, fmt.Errorf("bus: checkpoint slot %d: %d bytes, head says %d", ci.Slot, len(data), ci.Size)
	}
	return data, nil
}

// nextWithin returns the iterator's next message, failing after d or when ctx ends.
func nextWithin(ctx context.Context, it jetstream.MessagesContext, d time.Duration) (jetstream.Msg, error) {
	type res struct {
		m   jetstream.Msg
		err error
	}
	ch := make(chan res, 1)
	go func() {
		m, err := it.Next()
		ch <- res{m, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-t.C:
		it.Stop()
		return nil, fmt.Errorf("no message within %s", d)
	case <-ctx.Done():
		it.Stop()
		return nil, ctx.Err()
	}
}

// PutCheckpoint stores data as the checkpoint at event-stream sequence streamSeq, in the slot
// holding the oldest checkpoint (or none), creating the checkpoint stream if it is missing.
func (b *Bus) PutCheckpoint(ctx context.Context, streamSeq uint64, taken time.Time, data []byte) (CheckpointInfo, error) {
	if _, err := b.checkpointStore(ctx, true); err != nil {
		return CheckpointInfo{}, err
	}
	have, err := b.Checkpoints(ctx)
	if err != nil {
		return CheckpointInfo{}, err
	}
	slot := oldestSlot(have)
	subj := checkpointPrefix(b.cfg.Stream) + strconv.Itoa(slot)
	chunk := checkpointChunk
	if mp := int(b.nc.MaxPayload()); mp > 0 && mp-4096 < chunk {
		chunk = mp - 4096
	}
	seqs := strconv.FormatUint(streamSeq, 10)
	ci := CheckpointInfo{Slot: slot, StreamSeq: streamSeq, Size: len(data), Taken: taken}
	for i := 0; i == 0 || i*chunk < len(data); i++ {
		part := data[i*chunk : min(len(data), (i+1)*chunk)]
		msg := &nats.Msg{Subject: subj, Data: part, Header: nats.Header{}}
		msg.Header.Set(hdrCheckpoint, "chunk")
		msg.Header.Set(hdrCkptIndex, strconv.Itoa(i))
		msg.Header.Set(hdrCkptSeq, seqs)
		if i == 0 {
			msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject) // drops the slot's previous checkpoint
		}
		ack, err := b.js.PublishMsg(ctx, msg)
		if err != nil {
			return CheckpointInfo{}, fmt.Errorf("bus: put checkpoint chunk %d: %w", i, err)
		}
		if i == 0 {
			ci.first = ack.Sequence
		}
		ci.Chunks++
	}
	head := &nats.Msg{Subject: subj, Header: nats.Header{}}
	head.Header.Set(hdrCheckpoint, "head")
	head.Header.Set(hdrCkptSeq, seqs)
	head.Header.Set(hdrCkptChunks, strconv.Itoa(ci.Chunks))
	head.Header.Set(hdrCkptSize, strconv.Itoa(ci.Size))
	head.Header.Set(hdrCkptFirst, strconv.FormatUint(ci.first, 10))
	head.Header.Set(hdrCkptTakenNs, strconv.FormatInt(taken.UnixNano(), 10))
	if _, err := b.js.PublishMsg(ctx, head); err != nil {
		return CheckpointInfo{}, fmt.Errorf("bus: put checkpoint head: %w", err)
	}
	return ci, nil
}

// oldestSlot is a slot with no complete checkpoint, else the one with the oldest.
func oldestSlot(have []CheckpointInfo) int {
	used := map[int]bool{}
	for _, ci := range have {
		used[ci.Slot] = true
	}
	for slot := range CheckpointSlots {
		if !used[slot] {
			return slot
		}
	}
	return have[len(have)-1].Slot // newest first
}
