package redis

import (
	"context"
	"errors"

	goredis "github.com/redis/go-redis/v9"
)

// followFailover makes a cluster client re-read the slot map as soon as a
// command fails for want of a node. When a master dies and Redis Cluster
// promotes its replica, go-redis learns of it only from a MOVED answer or its
// periodic reload (every 60 s): the dead master answers nothing, so without
// this every session on its slots would be refused for up to a minute after
// the replica has taken over. A reload is one CLUSTER SLOTS, and go-redis
// runs at most one at a time with a pause between them.
type followFailover struct{ c *goredis.ClusterClient }

func (h followFailover) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h followFailover) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		h.after(ctx, err)
		return err
	}
}

func (h followFailover) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		h.after(ctx, err)
		return err
	}
}

// after asks for a reload when err says a node could not be used: not for an
// answer of Redis (an error reply, or no value) and not for a cancelled call.
func (h followFailover) after(ctx context.Context, err error) {
	var reply goredis.Error
	if err == nil || errors.Is(err, goredis.Nil) || errors.As(err, &reply) || ctx.Err() != nil {
		return
	}
	h.c.ReloadState(ctx)
}
