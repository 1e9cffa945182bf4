package sched_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anykernel/anykernel/hal/mem"
	"github.com/anykernel/anykernel/sched"
)

func isDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

type ctxKey struct{}

func TestWithTimeout(t *testing.T) {
	errParent := errors.New("parent gave up")
	tests := []struct {
		name      string
		timeout   time.Duration
		act       func(clk *mem.Clock, cancel context.CancelFunc, cancelParent context.CancelCauseFunc)
		wantErr   error
		wantCause error
	}{
		{
			name:    "not done before the deadline",
			timeout: 5 * time.Second,
			act: func(clk *mem.Clock, _ context.CancelFunc, _ context.CancelCauseFunc) {
				clk.Advance(5*time.Second - time.Nanosecond)
			},
		},
		{
			name:      "clock reaching the deadline expires it",
			timeout:   5 * time.Second,
			act:       func(clk *mem.Clock, _ context.CancelFunc, _ context.CancelCauseFunc) { clk.Advance(5 * time.Second) },
			wantErr:   context.DeadlineExceeded,
			wantCause: context.DeadlineExceeded,
		},
		{
			name:      "cancel before the deadline",
			timeout:   5 * time.Second,
			act:       func(clk *mem.Clock, cancel context.CancelFunc, _ context.CancelCauseFunc) { cancel() },
			wantErr:   context.Canceled,
			wantCause: context.Canceled,
		},
		{
			name:    "cancel after the deadline keeps the deadline error",
			timeout: 5 * time.Second,
			act: func(clk *mem.Clock, cancel context.CancelFunc, _ context.CancelCauseFunc) {
				clk.Advance(time.Minute)
				cancel()
			},
			wantErr:   context.DeadlineExceeded,
			wantCause: context.DeadlineExceeded,
		},
		{
			name:    "parent cancellation propagates with its cause",
			timeout: 5 * time.Second,
			act: func(clk *mem.Clock, _ context.CancelFunc, cancelParent context.CancelCauseFunc) {
				cancelParent(errParent)
			},
			wantErr:   context.Canceled,
			wantCause: errParent,
		},
		{
			name:      "zero timeout is expired at once",
			timeout:   0,
			act:       func(*mem.Clock, context.CancelFunc, context.CancelCauseFunc) {},
			wantErr:   context.DeadlineExceeded,
			wantCause: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := mem.NewClock(epoch)
				parent, cancelParent := context.WithCancelCause(context.WithValue(t.Context(), ctxKey{}, "v"))
				defer cancelParent(nil)
				ctx, cancel := sched.WithTimeout(parent, clk, tt.timeout)
				defer cancel()
				child, cancelChild := context.WithCancel(ctx)
				defer cancelChild()

				dl, ok := ctx.Deadline()
				assert.True(t, ok)
				assert.True(t, dl.Equal(epoch.Add(tt.timeout)), "deadline %v", dl)
				assert.Equal(t, "v", ctx.Value(ctxKey{}), "values come from the parent")

				tt.act(clk, cancel, cancelParent)
				synctest.Wait() // parent cancellation propagates on a goroutine

				for name, c := range map[string]context.Context{"ctx": ctx, "child": child} {
					assert.Equal(t, tt.wantErr != nil, isDone(c), "%s done", name)
					assert.Equal(t, tt.wantErr, c.Err(), "%s Err", name)
					assert.Equal(t, tt.wantCause, context.Cause(c), "%s Cause", name)
				}
				if tt.wantErr != nil {
					assert.Zero(t, clk.Pending(), "a done context must release its clock timer")
				}
			})
		})
	}
}

func TestWithTimeoutExpiresDuringAdvance(t *testing.T) {
	// Expiry is synchronous with the clock: when Advance returns, the
	// context and its descendants are done, with no goroutine hop.
	clk := mem.NewClock(epoch)
	ctx, cancel := sched.WithTimeout(context.Background(), clk, time.Second)
	defer cancel()
	child, cancelChild := context.WithTimeout(ctx, time.Hour)
	defer cancelChild()
	var sawInCallback error
	clk.AfterFunc(2*time.Second, func() { sawInCallback = child.Err() })
	clk.Advance(3 * time.Second)
	assert.ErrorIs(t, sawInCallback, context.DeadlineExceeded, "a later timer already sees the expiry")
	assert.ErrorIs(t, child.Err(), context.DeadlineExceeded)
}

func TestWithDeadline(t *testing.T) {
	tests := []struct {
		name         string
		deadline     time.Time
		parentDL     time.Duration // 0: parent has none
		wantDeadline time.Time
		expiresAt    time.Duration
	}{
		{
			name:         "deadline in the future",
			deadline:     epoch.Add(90 * time.Second),
			wantDeadline: epoch.Add(90 * time.Second),
			expiresAt:    90 * time.Second,
		},
		{
			name:         "deadline in the past",
			deadline:     epoch.Add(-time.Second),
			wantDeadline: epoch.Add(-time.Second),
			expiresAt:    0,
		},
		{
			name:         "earlier parent deadline is reported",
			deadline:     epoch.Add(90 * time.Second),
			parentDL:     30 * time.Second,
			wantDeadline: epoch.Add(30 * time.Second),
			expiresAt:    30 * time.Second,
		},
		{
			name:         "later parent deadline is not",
			deadline:     epoch.Add(20 * time.Second),
			parentDL:     30 * time.Second,
			wantDeadline: epoch.Add(20 * time.Second),
			expiresAt:    20 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := mem.NewClock(epoch)
				parent := context.Background()
				if tt.parentDL > 0 {
					var cancel context.CancelFunc
					parent, cancel = sched.WithTimeout(parent, clk, tt.parentDL)
					defer cancel()
				}
				ctx, cancel := sched.WithDeadline(parent, clk, tt.deadline)
				defer cancel()
				dl, ok := ctx.Deadline()
				require.True(t, ok)
				assert.True(t, dl.Equal(tt.wantDeadline), "Deadline() = %v", dl)

				if tt.expiresAt > 0 {
					clk.AdvanceTo(tt.expiresAt - time.Nanosecond)
					synctest.Wait()
					assert.NoError(t, ctx.Err())
				}
				clk.AdvanceTo(tt.expiresAt)
				synctest.Wait()
				assert.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
			})
		})
	}
}

func TestWithTimeoutParentAlreadyDone(t *testing.T) {
	clk := mem.NewClock(epoch)
	parent, cancelParent := context.WithCancel(context.Background())
	cancelParent()
	ctx, cancel := sched.WithTimeout(parent, clk, time.Second)
	defer cancel()
	assert.True(t, isDone(ctx), "done at once, without waiting for a goroutine")
	assert.Equal(t, context.Canceled, ctx.Err())
	assert.Zero(t, clk.Pending())
}

func TestWithTimeoutManyChildren(t *testing.T) {
	// Children of all kinds hang off the clock context without goroutines
	// and all learn of the expiry; cancel of one child leaves the rest.
	synctest.Test(t, func(t *testing.T) {
		clk := mem.NewClock(epoch)
		ctx, cancel := sched.WithTimeout(t.Context(), clk, time.Second)
		defer cancel()
		var children []context.Context
		for i := range 10 {
			c, cc := context.WithCancel(ctx)
			defer cc()
			if i == 0 {
				cc()
			}
			children = append(children, c)
		}
		inner, cancelInner := sched.WithTimeout(ctx, clk, time.Hour)
		defer cancelInner()
		afterRan := make(chan struct{})
		context.AfterFunc(ctx, func() { close(afterRan) })

		clk.Advance(time.Second)
		<-afterRan
		assert.Equal(t, context.Canceled, children[0].Err())
		for _, c := range children[1:] {
			assert.Equal(t, context.DeadlineExceeded, c.Err())
		}
		synctest.Wait()
		assert.Equal(t, context.DeadlineExceeded, inner.Err(), "nested clock context inherits the parent's error")
		assert.Zero(t, clk.Pending(), "the nested context released its timer too")
	})
}
