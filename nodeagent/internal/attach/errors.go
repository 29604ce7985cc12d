package attach

import "errors"

// CNI error codes (spec: 0-99 well known, 100+ the plugin's own).
const (
	CodeEnv      = 4   // a CNI_* variable is missing or wrong
	CodeIO       = 5   // the kernel or the disk failed
	CodeConfig   = 7   // the network config is wrong
	CodeTryAgain = 11  // the agent is not ready: retry
	CodePod      = 100 // the pod is unknown to the API server, or asks for nothing topolane gives
	CodeDevice   = 101 // no free device for the pod, or the one chosen is taken
	CodeIPAM     = 102 // the IPAM plugin failed
)

// Error is a failure with its CNI error code.
type Error struct {
	Code uint
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func coded(code uint, err error) error {
	if err == nil {
		return nil
	}
	var c *Error
	if errors.As(err, &c) {
		return err
	}
	return &Error{Code: code, Err: err}
}

// CodeOf is the CNI error code of err: I/O failure unless it says otherwise.
func CodeOf(err error) uint {
	var c *Error
	if errors.As(err, &c) {
		return c.Code
	}
	return CodeIO
}
