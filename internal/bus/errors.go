package bus

import (
	"errors"

	"github.com/refit-ml/refit/events"
)

// permanentError marks an error that will fail again however often the
// message is retried: the router dead-letters it at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (nil stays nil).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or anything it wraps, is permanent.
// Undecodable events are permanent too.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p) || errors.Is(err, events.ErrMalformed)
}
