package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kindling-dev/kindling/services/datastorage/api"
)

// Bucket layout:
//
//	events                 seq (8 bytes big-endian)               → event JSON
//	events_by_correlation  uvarint(len(cid)) ‖ cid ‖ seq           → empty
//	events_by_event_id     event_id                                → seq
//
// The length prefix makes a correlation id's keys a contiguous range that no
// other id can share, and the trailing big-endian seq orders that range by
// insertion, so listing is a single prefix scan.
var (
	eventsBucket        = []byte("events")
	byCorrelationBucket = []byte("events_by_correlation")
	byEventIDBucket     = []byte("events_by_event_id")
)

// dbFileName is the bbolt file inside the data directory.
const dbFileName = "audit.db"

// Store persists audit events in a bbolt database.
type Store struct {
	db *bolt.DB
}

// OpenStore opens (creating if needed) <dir>/audit.db.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, dbFileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open audit database %s (is another process holding it?): %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{eventsBucket, byCorrelationBucket, byEventIDBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise audit database %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Append stores ev with a newly assigned ID and reports created=true. If
// ev.EventID is set and already stored, it returns the stored event and
// created=false instead. The event and its index entries are written in one
// transaction, so a crash never leaves a partially indexed event.
func (s *Store) Append(ev api.Event) (stored api.Event, created bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		events := tx.Bucket(eventsBucket)
		byEventID := tx.Bucket(byEventIDBucket)
		if ev.EventID != "" {
			if seq := byEventID.Get([]byte(ev.EventID)); seq != nil {
				return json.Unmarshal(events.Get(seq), &stored)
			}
		}
		n, err := events.NextSequence()
		if err != nil {
			return fmt.Errorf("allocate sequence: %w", err)
		}
		seq := binary.BigEndian.AppendUint64(nil, n)
		ev.ID = formatID(n)
		data, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		if err := events.Put(seq, data); err != nil {
			return fmt.Errorf("put event: %w", err)
		}
		if err := tx.Bucket(byCorrelationBucket).Put(correlationKey(ev.CorrelationID, seq), []byte{}); err != nil {
			return fmt.Errorf("index correlation_id: %w", err)
		}
		if ev.EventID != "" {
			if err := byEventID.Put([]byte(ev.EventID), seq); err != nil {
				return fmt.Errorf("index event_id: %w", err)
			}
		}
		stored, created = ev, true
		return nil
	})
	if err != nil {
		return api.Event{}, false, fmt.Errorf("append audit event: %w", err)
	}
	return stored, created, nil
}

// ByCorrelation lists the events of one correlation id in insertion order,
// optionally only those of eventType.
func (s *Store) ByCorrelation(correlationID, eventType string) ([]api.Event, error) {
	out := []api.Event{}
	prefix := correlationKey(correlationID, nil)
	err := s.db.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(eventsBucket)
		c := tx.Bucket(byCorrelationBucket).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			data := events.Get(k[len(prefix):])
			if data == nil {
				return fmt.Errorf("index entry %x points at a missing event", k)
			}
			var ev api.Event
			if err := json.Unmarshal(data, &ev); err != nil {
				return fmt.Errorf("decode event %x: %w", k[len(prefix):], err)
			}
			if eventType == "" || ev.EventType == eventType {
				out = append(out, ev)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit events for correlation_id %q: %w", correlationID, err)
	}
	return out, nil
}

// Ping fails once the database is closed.
func (s *Store) Ping() error {
	return s.db.View(func(*bolt.Tx) error { return nil })
}

// Close closes the database; later calls fail with bolt's ErrDatabaseNotOpen.
func (s *Store) Close() error { return s.db.Close() }

// formatID renders a sequence number as the public event id: 16 lowercase
// hex digits, so ids sort lexically in insertion order.
func formatID(seq uint64) string { return fmt.Sprintf("%016x", seq) }

func correlationKey(correlationID string, seq []byte) []byte {
	key := binary.AppendUvarint(nil, uint64(len(correlationID)))
	key = append(key, correlationID...)
	return append(key, seq...)
}
