"""The wire protocol, pure: messages and their strict decoding, the handshake's identities
and proofs."""
