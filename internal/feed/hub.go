package feed

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Hub holds the instruments, sharded over owner goroutines, and routes events and session
// commands to the owner of each instrument.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	owners  []*owner
	delay   time.Duration // a delay tier's hub (delayed.go): Subscribed.delay_ms; set before start
	// snapshots asks ingest for a fresh snapshot of an instrument whose book is not whole
	// (Server.EnableSnapshotRequests); nil: nobody to ask.
	snapshots atomic.Pointer[func(instrument string) error]

	mu sync.RWMutex
	// guarded by mu:
	registry   map[string]*entry
	nextHandle uint32
	waiters    map[string][]command  // Subscribe.wait: cmdSubscribes posted when the instrument appears
	listeners  map[*session]struct{} // ListInstruments.watch: told of every listing and change
	// venueSubs: the connections holding a venue wildcard ("venue:*"), by venue; each is told of
	// every instrument of the venue that appears (session.venueListed).
	venueSubs map[string]map[*session]struct{}
}

// entry is the hub's public record of an instrument.
type entry struct {
	handle uint32
	info   *pb.InstrumentInfo // nil until the first Info event
}

func newHub(cfg Config, log *slog.Logger, m *metrics) *Hub {
	h := &Hub{cfg: cfg, log: log, metrics: m, registry: make(map[string]*entry), waiters: make(map[string][]command),
		listeners: make(map[*session]struct{}), venueSubs: make(map[string]map[*session]struct{})}
	for range cfg.Owners {
		h.owners = append(h.owners, newOwner(h, cfg.OwnerQueue))
	}
	return h
}

// start runs every owner with the given launcher; they stop when quit closes.
func (h *Hub) start(launch func(func()), quit <-chan struct{}) {
	for _, o := range h.owners {
		launch(func() { o.run(quit) })
	}
}

// resumeHistoryBytes is the memory the owners' resume histories hold.
func (h *Hub) resumeHistoryBytes() int64 {
	var n int64
	for _, o := range h.owners {
		n += o.histBytes.Load()
	}
	return n
}

func (h *Hub) ownerOf(instrument string) *owner {
	f := fnv.New32a()
	f.Write([]byte(instrument))
	return h.owners[f.Sum32()%uint32(len(h.owners))]
}

// Dispatch hands an event to its instrument's owner, waiting while the owner's queue is full.
// It returns ctx's error if ctx ends first.
func (h *Hub) Dispatch(ctx context.Context, ev *pb.Event) error {
	select {
	case h.ownerOf(ev.GetInstrument()).events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// register gives a new instrument its handle. Called by the instrument's owner.
func (h *Hub) register(id string) uint32 {
	h.mu.Lock()
	if e := h.registry[id]; e != nil {
		h.mu.Unlock()
		return e.handle
	}
	h.nextHandle++
	handle := h.nextHandle
	h.registry[id] = &entry{handle: handle}
	h.metrics.instruments.Set(float64(len(h.registry)))
	if ws := h.waiters[id]; ws != nil {
		delete(h.waiters, id)
		// The owner registering id takes these after the event that made it exist: the
		// snapshots they ask for show it.
		o := h.ownerOf(id)
		for _, c := range ws {
			o.post(c)
		}
	}
	var venueSubs []*session
	venue, _, _ := strings.Cut(id, ":")
	for s := range h.venueSubs[venue] {
		venueSubs = append(venueSubs, s)
	}
	h.mu.Unlock()
	// Outside mu: a session takes its subsMu before mu (watchVenue).
	for _, s := range venueSubs {
		s.venueListed(id)
	}
	return handle
}

// watchVenue adds sess to the venue's wildcard subscribers and returns the instruments of the
// venue that exist now, sorted. Every instrument of the venue is then either in the list or told
// to sess.venueListed later, never both and never neither.
func (h *Hub) watchVenue(sess *session, venue string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.venueSubs[venue] == nil {
		h.venueSubs[venue] = map[*session]struct{}{}
	}
	h.venueSubs[venue][sess] = struct{}{}
	var ids []string
	for id := range h.registry {
		if v, _, _ := strings.Cut(id, ":"); v == venue {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// unwatchVenue removes sess from the venue's wildcard subscribers.
func (h *Hub) unwatchVenue(sess *session, venue string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.venueSubs[venue], sess)
	if len(h.venueSubs[venue]) == 0 {
		delete(h.venueSubs, venue)
	}
}

// subscribeOrWait posts a Subscribe.wait command to its instrument's owner if the instrument
// exists, or keeps it until it does (register posts it then). It reports whether it waits.
func (h *Hub) subscribeOrWait(c command) (waiting bool) {
	h.mu.Lock()
	if h.registry[c.instrument] == nil {
		h.waiters[c.instrument] = append(h.waiters[c.instrument], c)
		h.mu.Unlock()
		return true
	}
	h.mu.Unlock()
	h.ownerOf(c.instrument).post(c)
	return false
}

// cancelWait drops the given channels (all when chans is nil) from sess's waiting subscribe of
// instrument. It reports whether one was waiting; when the instrument appeared meanwhile, its
// subscribe has been posted and an Unsubscribe must go to the owner like any other.
func (h *Hub) cancelWait(sess *session, instrument string, chans []pb.Channel) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := h.waiters[instrument]
	found := false
	kept := ws[:0]
	for _, c := range ws {
		if c.sess != sess {
			kept = append(kept, c)
			continue
		}
		found = true
		if chans != nil {
			var left []pb.Channel
			for _, ch := range c.channels {
				if !containsChannel(chans, ch) {
					left = append(left, ch)
				}
			}
			if len(left) > 0 {
				c.channels = left
				kept = append(kept, c)
			}
		}
	}
	clear(ws[len(kept):])
	if len(kept) == 0 {
		delete(h.waiters, instrument)
	} else {
		h.waiters[instrument] = kept
	}
	return found
}

// setInfo records an instrument's reference data. It reports whether it replaced different
// data (not the first, and not a repeat): subscribers are then told.
func (h *Hub) setInfo(id string, info *pb.InstrumentInfo) (first, changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.registry[id]; e != nil {
		first = e.info == nil
		changed = !first && !proto.Equal(e.info, info)
		e.info = info
	}
	return first, changed
}

// listen adds a ListInstruments.watch connection; unlisten removes it (the connection ended).
func (h *Hub) listen(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.listeners[s] = struct{}{}
}

func (h *Hub) unlisten(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.listeners, s)
}

// listening returns the ListInstruments.watch connections (nil when none: the common case).
func (h *Hub) listening() []*session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.listeners) == 0 {
		return nil
	}
	out := make([]*session, 0, len(h.listeners))
	for s := range h.listeners {
		out = append(out, s)
	}
	return out
}

// known reports whether an instrument exists.
func (h *Hub) known(id string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.registry[id] != nil
}

// Instruments returns the reference data of every instrument that has any, sorted by id.
func (h *Hub) Instruments() []*pb.InstrumentInfo {
	h.mu.RLock()
	out := make([]*pb.InstrumentInfo, 0, len(h.registry))
	for _, e := range h.registry {
		if e.info != nil {
			out = append(out, proto.CloneOf(e.info))
		}
	}
	h.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// postAll posts a command to every owner (for commands about a whole session).
// Sync returns once every owner has applied every event dispatched before the call, or with
// ctx's error.
func (h *Hub) Sync(ctx context.Context) error {
	dones := make([]chan struct{}, len(h.owners))
	for i, o := range h.owners {
		dones[i] = make(chan struct{})
		o.post(command{kind: cmdBarrier, done: dones[i]})
	}
	for _, d := range dones {
		select {
		case <-d:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (h *Hub) postAll(c command) {
	for _, o := range h.owners {
		o.post(c)
	}
}
