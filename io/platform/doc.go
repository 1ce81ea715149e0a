// Package platform is the wire format of the FEP <-> one-card platform link, a format we
// define (the platform's own interface document is not available): 2-byte length framing
// (io/frame), a fixed 21-byte header (magic, version, type, result, sequence, batch,
// sender time), TLV body fields from one tag dictionary, and an 8-byte ANSI X9.19 MAC over
// everything before it. docs/protocols/platform.md is the document the platform's team
// builds from; this package is its executable form.
//
// The format is data: tagTable is the tag dictionary, schemaTable says which tags each
// message carries (M/C/O/R), Codes is the result code table. Messages are typed structs;
// Pack and Unpack add and check the header and MAC.
//
// Keys never live here: a MACer (the FEP's security module, or SoftMAC in the platform peer
// and tests) holds the sign-in key or the batch's dynamic key. Unpack verifies the MAC
// before it parses the body; PeekHeader lets a receiver pick the key by type and batch and
// refuse a stale batch first. No I/O, no package-level mutable state.
package platform
