// Package bad has one finding of each kind the gate's lint must report.
package bad

import (
	"fmt"
	"sync"
)

// Printf has a verb that does not match its argument: go vet's printf
// analyzer and staticcheck's SA5009 both say so.
func Printf() string { return fmt.Sprintf("%d", "x") }

// Copy passes a lock by value (go vet's copylocks).
func Copy(mu sync.Mutex) {}

func unused() {} // staticcheck's U1000

//lint:ignore U1000 silenced: must not be reported
func silenced() {}

//lint:ignore SA4006 matches nothing here
func Nothing() {}
