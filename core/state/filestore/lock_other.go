//go:build !unix

package filestore

import "context"

// lockFile is a no-op where flock is missing: bbolt's own file lock, retried
// by Store.open, still serializes processes, only with polling.
func lockFile(context.Context, string, bool) (func(), error) {
	return func() {}, nil
}
