// SPDX-License-Identifier: Apache-2.0
//
// An independent verifier of kilnd's audit log, built on Go's
// golang.org/x/mod/sumdb/note and sumdb/tlog (Debian's
// golang-golang-x-mod-dev), for tests/e2e/audit.sh. Nothing here is kiln
// code: if kiln's checkpoints, tiles or proofs drift from the C2SP formats
// or the RFC 6962 hashing, this fails.
//
//	auditverify SERVER TOKEN VKEY-FILE PROOF-FILE [OLD-CHECKPOINT-FILE]
//
// 1. The checkpoint served at SERVER/v1/audit/checkpoint opens with
//    note.Open under the verifier key (c2sp.org/signed-note).
// 2. tlog.TileHashReader reads the hash tiles (x/mod 0.7.0 names them
//    tile/H/L/N; C2SP drops the H: the path is mapped) and proves every
//    hash it returns against the tree head; tlog.TreeHash recomputes it.
// 3. The c2sp.org/tlog-proof in PROOF-FILE: its checkpoint opens, its
//    entry (read from the entries tile) passes tlog.CheckRecord, and
//    tlog.ProveRecord gives the same path.
// 4. With an old checkpoint: tlog.ProveTree + tlog.CheckTree.
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var server, token string

func get(path string) ([]byte, error) {
	req, err := http.NewRequest("GET", server+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, nil
}

type checkpoint struct {
	origin string
	tree   tlog.Tree
}

// openCheckpoint verifies the signed note and parses the c2sp.org/tlog-checkpoint body.
func openCheckpoint(msg []byte, v note.Verifier) (checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return checkpoint{}, fmt.Errorf("note.Open: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return checkpoint{}, fmt.Errorf("checkpoint body: %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return checkpoint{}, err
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("root hash %q", lines[2])
	}
	var h tlog.Hash
	copy(h[:], raw)
	if lines[0] != v.Name() {
		return checkpoint{}, fmt.Errorf("origin %q is not the key name %q", lines[0], v.Name())
	}
	return checkpoint{lines[0], tlog.Tree{N: size, Hash: h}}, nil
}

type tiles struct{}

func (tiles) Height() int { return 8 }

func (tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		p := t.Path() // tile/8/L/N[.p/W]
		c2sp := "tile/" + strings.TrimPrefix(p, "tile/8/")
		b, err := get("/v1/audit/" + c2sp)
		if err != nil {
			return nil, err
		}
		if len(b) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%s: %d bytes", c2sp, len(b))
		}
		out[i] = b
	}
	return out, nil
}

func (tiles) SaveTiles([]tlog.Tile, [][]byte) {}

// entry reads entry i from its entries tile (uint16-length-prefixed bundle).
func entry(i, size int64) ([]byte, error) {
	t := tlog.Tile{H: 8, L: -1, N: i / 256, W: 256}
	if (i/256+1)*256 > size {
		t.W = int(size - (i/256)*256)
	}
	p := "tile/entries/" + strings.TrimPrefix(t.Path(), "tile/8/data/")
	b, err := get("/v1/audit/" + p)
	if err != nil {
		return nil, err
	}
	for k := int64(0); len(b) >= 2; k++ {
		n := int(b[0])<<8 | int(b[1])
		if len(b) < 2+n {
			return nil, fmt.Errorf("%s: truncated bundle", p)
		}
		if k == i%256 {
			return b[2 : 2+n], nil
		}
		b = b[2+n:]
	}
	return nil, fmt.Errorf("%s: entry %d not in the bundle", p, i)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "auditverify: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 5 && len(os.Args) != 6 {
		fail("usage: auditverify SERVER TOKEN VKEY-FILE PROOF-FILE [OLD-CHECKPOINT]")
	}
	server, token = os.Args[1], os.Args[2]
	vk, err := os.ReadFile(os.Args[3])
	if err != nil {
		fail("%v", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vk)))
	if err != nil {
		fail("note.NewVerifier: %v", err)
	}

	msg, err := get("/v1/audit/checkpoint")
	if err != nil {
		fail("%v", err)
	}
	cp, err := openCheckpoint(msg, v)
	if err != nil {
		fail("checkpoint: %v", err)
	}
	hr := tlog.TileHashReader(cp.tree, tiles{})
	th, err := tlog.TreeHash(cp.tree.N, hr)
	if err != nil {
		fail("tlog.TreeHash over the tiles: %v", err)
	}
	if th != cp.tree.Hash {
		fail("the tiles give tree hash %v, the checkpoint says %v", th, cp.tree.Hash)
	}
	fmt.Printf("checkpoint %s size %d: signature and tiles verified\n", cp.origin, cp.tree.N)

	// The c2sp.org/tlog-proof.
	pf, err := os.ReadFile(os.Args[4])
	if err != nil {
		fail("%v", err)
	}
	parts := bytes.SplitN(pf, []byte("\n\n"), 2)
	if len(parts) != 2 {
		fail("proof: no checkpoint")
	}
	lines := strings.Split(string(parts[0]), "\n")
	if len(lines) < 2 || lines[0] != "c2sp.org/tlog-proof@v1" || !strings.HasPrefix(lines[1], "index ") {
		fail("proof: bad header %q", parts[0])
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "index "), 10, 64)
	if err != nil {
		fail("proof: %v", err)
	}
	var rp tlog.RecordProof
	for _, l := range lines[2:] {
		raw, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(raw) != tlog.HashSize {
			fail("proof: hash %q", l)
		}
		var h tlog.Hash
		copy(h[:], raw)
		rp = append(rp, h)
	}
	pcp, err := openCheckpoint(parts[1], v)
	if err != nil {
		fail("proof checkpoint: %v", err)
	}
	e, err := entry(index, pcp.tree.N)
	if err != nil {
		fail("%v", err)
	}
	if err := tlog.CheckRecord(rp, pcp.tree.N, pcp.tree.Hash, index, tlog.RecordHash(e)); err != nil {
		fail("tlog.CheckRecord: %v", err)
	}
	if pcp.tree.N <= cp.tree.N {
		gp, err := tlog.ProveRecord(cp.tree.N, index, hr)
		if err != nil {
			fail("tlog.ProveRecord: %v", err)
		}
		if err := tlog.CheckRecord(gp, cp.tree.N, cp.tree.Hash, index, tlog.RecordHash(e)); err != nil {
			fail("tlog.CheckRecord (own proof): %v", err)
		}
		if pcp.tree.N == cp.tree.N && fmt.Sprint(gp) != fmt.Sprint(rp) {
			fail("kiln's proof %v differs from tlog.ProveRecord's %v", rp, gp)
		}
	}
	fmt.Printf("inclusion proof of entry %d in %d verified: %s\n", index, pcp.tree.N, e)

	if len(os.Args) == 6 {
		old, err := os.ReadFile(os.Args[5])
		if err != nil {
			fail("%v", err)
		}
		ocp, err := openCheckpoint(old, v)
		if err != nil {
			fail("old checkpoint: %v", err)
		}
		tp, err := tlog.ProveTree(cp.tree.N, ocp.tree.N, hr)
		if err != nil {
			fail("tlog.ProveTree: %v", err)
		}
		if err := tlog.CheckTree(tp, cp.tree.N, cp.tree.Hash, ocp.tree.N, ocp.tree.Hash); err != nil {
			fail("tlog.CheckTree: %v", err)
		}
		fmt.Printf("consistency %d -> %d verified\n", ocp.tree.N, cp.tree.N)
	}
}
