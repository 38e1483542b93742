package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/kindling-dev/kindling/services/datastorage/api"
)

func openTestStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatalf("OpenStore(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testEvent(correlationID, eventType string) api.Event {
	return api.Event{
		CorrelationID: correlationID,
		EventType:     eventType,
		Source:        "test",
		Timestamp:     time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Payload:       json.RawMessage(`{"k":"v"}`),
		ReceivedAt:    time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC),
	}
}

func TestOpenStoreCreatesDataDirAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	openTestStore(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "audit.db")); err != nil {
		t.Fatalf("audit.db not created: %v", err)
	}
}

func TestAppendAssignsSequentialIDs(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	for i, want := range []string{"0000000000000001", "0000000000000002", "0000000000000003"} {
		got, created, err := s.Append(testEvent("c1", "t"))
		if err != nil {
			t.Fatal(err)
		}
		if !created || got.ID != want {
			t.Errorf("append %d: id=%q created=%v, want id=%q created=true", i, got.ID, created, want)
		}
	}
}

func TestAppendIsIdempotentOnEventID(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	first := testEvent("c1", "t")
	first.EventID = "evt-1"
	stored, created, err := s.Append(first)
	if err != nil || !created {
		t.Fatalf("first append: created=%v err=%v", created, err)
	}

	retry := testEvent("c1", "different-type")
	retry.EventID = "evt-1"
	again, created, err := s.Append(retry)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("second append with the same event_id created a new event")
	}
	if again.ID != stored.ID || again.EventType != "t" {
		t.Errorf("second append returned %+v, want the originally stored event %+v", again, stored)
	}
	events, err := s.ByCorrelation("c1", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Errorf("got %d events, want 1 (no duplicate)", len(events))
	}
}

func TestByCorrelationKeepsInsertionOrderAndSeparatesIDs(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	// "a" and "a\x00" / "ab" would collide under a naive separator or prefix scan.
	for _, cid := range []string{"a", "ab", "a", "a\x00", "b", "a"} {
		if _, _, err := s.Append(testEvent(cid, "t-"+cid)); err != nil {
			t.Fatal(err)
		}
	}
	events, err := s.ByCorrelation("a", "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range events {
		if ev.CorrelationID != "a" {
			t.Errorf("event %s has correlation_id %q, want %q", ev.ID, ev.CorrelationID, "a")
		}
		ids = append(ids, ev.ID)
	}
	want := fmt.Sprint([]string{"0000000000000001", "0000000000000003", "0000000000000006"})
	if fmt.Sprint(ids) != want {
		t.Errorf("ids = %v, want %v", ids, want)
	}
}

func TestByCorrelationFiltersByEventType(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	for _, typ := range []string{"created", "updated", "created"} {
		if _, _, err := s.Append(testEvent("c", typ)); err != nil {
			t.Fatal(err)
		}
	}
	events, err := s.ByCorrelation("c", "created")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].ID != "0000000000000001" || events[1].ID != "0000000000000003" {
		t.Errorf("filtered events = %+v, want ids 1 and 3", events)
	}
}

func TestByCorrelationUnknownIsEmptyNotNil(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	events, err := s.ByCorrelation("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	if events == nil || len(events) != 0 {
		t.Errorf("events = %#v, want empty non-nil slice", events)
	}
}

func TestEventsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	withID := testEvent("c", "t")
	withID.EventID = "idem"
	first, _, err := s.Append(withID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(testEvent("c", "t2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTestStore(t, dir)
	events, err := s.ByCorrelation("c", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("after reopen got %d events, want 2", len(events))
	}
	got := events[0]
	if got.ID != first.ID || got.EventID != "idem" || !got.Timestamp.Equal(first.Timestamp) ||
		!got.ReceivedAt.Equal(first.ReceivedAt) || string(got.Payload) != `{"k":"v"}` {
		t.Errorf("reopened event = %+v, want %+v", got, first)
	}

	// The idempotency index and the sequence survive too.
	again, created, err := s.Append(withID)
	if err != nil || created || again.ID != first.ID {
		t.Errorf("re-append after reopen: id=%q created=%v err=%v, want id=%q created=false", again.ID, created, err, first.ID)
	}
	next, _, err := s.Append(testEvent("c", "t3"))
	if err != nil || next.ID != "0000000000000003" {
		t.Errorf("next id after reopen = %q (err %v), want 0000000000000003", next.ID, err)
	}
}

func TestConcurrentAppendsWithSameEventIDStoreOnce(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	var wg sync.WaitGroup
	var mu sync.Mutex
	createdCount := 0
	for range 8 {
		wg.Go(func() {
			ev := testEvent("c", "t")
			ev.EventID = "same"
			_, created, err := s.Append(ev)
			if err != nil {
				t.Error(err)
			}
			if created {
				mu.Lock()
				createdCount++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if createdCount != 1 {
		t.Errorf("%d appends reported created, want exactly 1", createdCount)
	}
}

func TestClosedStoreReportsNotOpen(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	if err := s.Ping(); err != nil {
		t.Fatalf("Ping on open store: %v", err)
	}
	s.Close()
	if err := s.Ping(); !errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		t.Errorf("Ping after Close = %v, want ErrDatabaseNotOpen", err)
	}
	if _, _, err := s.Append(testEvent("c", "t")); !errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		t.Errorf("Append after Close = %v, want ErrDatabaseNotOpen", err)
	}
}
