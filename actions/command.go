// Package actions turns a sequence.Match into effects on the system: it runs
// a door's start command, schedules its stop command, adds the knocker to a
// door's nftables set, and records each timed close in the journal before
// the door opens.
//
// The decisions are made by a plain-data state machine (doors in, effects
// out, time passed in; see machine.go), and carried out by the Runner's
// thin shell of workers, timers and journal writes around it.
//
// Commands never run on the matcher's goroutine. The Runner hands start
// commands to a fixed pool of workers through a queue that takes a burst
// of many thousand opens and drains at the rate the workers run them, so a
// slow or hanging command can delay other starts but never the reading of
// knocks. Stop commands run on a bounded set of goroutines of their own, so
// a door closes on time however many starts are waiting, and a stop that
// fails is retried with backoff before it is given up with an error saying
// the door may still be open.
package actions

import (
	"portknock/command"
	"portknock/sequence"
)

// Command is what a door runs; see package command.
type Command = command.Command

// Substitute fills in c's placeholders from a match (see
// command.Substitute): the match's source, door, and last knock's port and
// protocol.
func Substitute(c Command, m sequence.Match) Command {
	proto := ""
	if m.Last.Proto == sequence.TCP || m.Last.Proto == sequence.UDP {
		proto = m.Last.Proto.String()
	}
	return command.Substitute(c, command.Vars{IP: m.Src, Door: m.Door, Port: m.Last.Port, Proto: proto})
}
