// keyfile.h: faradayd's WireGuard private key on disk, in `wg genkey`'s format (one
// base64 key and a newline), created on first start and reused on every later one.
//
// Contract:
// - An existing file is read, never rewritten. It must be a regular file with no
//   permission bits for group or other (chmod 600); otherwise, or when it does not
//   hold exactly one base64 key (surrounding whitespace allowed), it is refused.
// - A missing file is created atomically: a fresh key goes to a temporary file in
//   the same directory (O_EXCL, mode 0600), which is fsync'ed and renamed into place
//   without replacing a file that appeared meanwhile (then that one is loaded), and
//   the directory is fsync'ed. The directory is not created.
// - Error strings name the path and the reason; they never contain key material.
//   Buffers that held the key are wiped.
//
// Threads: no shared state; callers must not race on the same path from one process.
#pragma once

#include <string>

#include "crypto/keys.h"
#include "result.h"

namespace faraday::control {

// Loads the private key at path, or creates it there when the file does not exist.
// *created (when non-null) tells which happened.
Result<crypto::Key> load_or_create_private_key(const std::string& path, bool* created);

}  // namespace faraday::control
