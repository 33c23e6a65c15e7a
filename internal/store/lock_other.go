//go:build !unix

package store

import "sync"

// dirLock serializes directory updates where flock(2) is missing: within
// this process only.
var dirLock sync.Mutex

// lockDir takes the process-wide directory lock and returns the function
// that releases it.
func lockDir(string) (unlock func(), err error) {
	dirLock.Lock()
	return dirLock.Unlock, nil
}
