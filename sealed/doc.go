// Package sealed implements sealed doors: a knock sequence that is one
// AES-256 block, written as sixteen knocks, so that a sniffed sequence is
// worth nothing to anyone else.
//
// The block holds the time it was made, a random nonce, a tag binding it to
// the client's source address, the door's id and a magic value; only the
// holder of the key can make one that decrypts to something valid. Knock i
// carries ciphertext byte C[i] as the port base + 256·i + C[i], so the
// knocks may arrive in any order and be retransmitted freely.
//
// The package is pure: it turns keys, times, addresses and ports into
// blocks and back and never touches files, sockets or clocks. The client
// (portknock) seals; the daemon collects knocks per source, opens complete
// sets with an Opener and keeps the replay cache, which this package only
// names (ReasonReplay). docs/sealed.md is the specification, with test
// vectors.
package sealed
