// aead_ipsecmb.cpp: the multi-buffer backend, on intel-ipsec-mb's job API. A burst is
// handed to the library's job manager in chunks of kChunk messages: every message is
// submitted, whatever completes is collected on the way, and a flush collects the
// rest. The manager interleaves several messages per vector instruction (AVX-512 on
// this kind of machine), which is where its speed over one-call-per-message comes
// from. Completed jobs are matched back to their AeadJob through user_data, so the
// completion order does not matter.
//
// Open and "unchanged on failure": the library computes the tag over the ciphertext
// and decrypts in the same job, in place, so a forged message has been turned into
// garbage plaintext by the time its tag is known. A failed open therefore restores the
// ciphertext by running the same ChaCha20 keystream (same key, same nonce, block
// counter 1, as the AEAD uses for the payload) over it again: XOR twice is the
// identity, so the buffer is back byte for byte. Forgeries are rare and cost one extra
// pass; the common case pays nothing (no copy of every message to a scratch buffer).
// The received tag itself is never written: the computed tag goes to per-slot scratch
// and is compared in constant time.
//
// Threads: one IMB_MGR per backend object; a worker owns its backend (aead_batch.h).
#include "config.h"
#include "crypto/aead_batch.h"

#if FARADAY_HAVE_IPSECMB

#include <intel-ipsec-mb.h>
#include <sodium.h>

#include <array>
#include <cstring>

#include "crypto/aead.h"

namespace faraday::crypto {
namespace {

constexpr size_t kNonceSize = 12;
// Messages in flight per submit/flush round; the manager queues more than this, so a
// submit never has to wait for a slot. Bursts longer than this run in several rounds.
constexpr size_t kChunk = 64;

const char* arch_name(IMB_ARCH arch) {
  switch (arch) {
    case IMB_ARCH_SSE:
      return "sse";
    case IMB_ARCH_AVX:
      return "avx";
    case IMB_ARCH_AVX2:
      return "avx2";
    case IMB_ARCH_AVX512:
      return "avx512";
    default:
      return "unknown";
  }
}

class IpsecMbBackend final : public AeadBackend {
 public:
  IpsecMbBackend(IMB_MGR* mgr, IMB_ARCH arch) : mgr_(mgr), arch_(arch) {}
  ~IpsecMbBackend() override { free_mb_mgr(mgr_); }
  IpsecMbBackend(const IpsecMbBackend&) = delete;
  IpsecMbBackend& operator=(const IpsecMbBackend&) = delete;

  const char* name() const override { return "ipsec-mb"; }
  std::string describe() const override {
    return std::string("ipsec-mb (") + arch_name(arch_) + ")";
  }

  void seal_burst(std::span<AeadJob> jobs) override {
    for (size_t i = 0; i < jobs.size(); i += kChunk)
      run(jobs.subspan(i, std::min(kChunk, jobs.size() - i)), true);
  }

  void open_burst(std::span<AeadJob> jobs) override {
    for (size_t i = 0; i < jobs.size(); i += kChunk)
      run(jobs.subspan(i, std::min(kChunk, jobs.size() - i)), false);
  }

 private:
  void run(std::span<AeadJob> chunk, bool seal);
  void submit(AeadJob& job, size_t slot, bool seal);
  void complete(const IMB_JOB& done, bool seal);
  void open_checked(AeadJob& job, size_t slot);

  IMB_MGR* mgr_;
  IMB_ARCH arch_;
  std::array<std::array<uint8_t, kNonceSize>, kChunk> nonces_{};
  std::array<std::array<uint8_t, kTagSize>, kChunk> tags_{};  // computed tags on open
};

void IpsecMbBackend::run(std::span<AeadJob> chunk, bool seal) {
  for (size_t slot = 0; slot < chunk.size(); ++slot) {
    AeadJob& job = chunk[slot];
    if (!seal && job.length < kTagSize) {
      job.ok = false;  // shorter than a tag: nothing to open
      continue;
    }
    submit(job, slot, seal);
    for (IMB_JOB* done = IMB_SUBMIT_JOB(mgr_); done; done = IMB_GET_COMPLETED_JOB(mgr_))
      complete(*done, seal);
  }
  while (IMB_JOB* done = IMB_FLUSH_JOB(mgr_)) complete(*done, seal);
}

void IpsecMbBackend::submit(AeadJob& job, size_t slot, bool seal) {
  const uint64_t text = seal ? job.length : job.length - kTagSize;
  std::array<uint8_t, kNonceSize>& nonce = nonces_[slot];
  nonce.fill(0);
  for (size_t i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(job.counter >> (8 * i));

  IMB_JOB* j = IMB_GET_NEXT_JOB(mgr_);
  j->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
  j->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
  j->cipher_direction = seal ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
  // Seal: encrypt, then the tag over the ciphertext. Open: the tag over the ciphertext
  // first, then decrypt.
  j->chain_order = seal ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
  j->enc_keys = job.key->data();
  j->dec_keys = job.key->data();
  j->key_len_in_bytes = kKeySize;
  j->src = job.data;
  j->dst = job.data;
  j->cipher_start_src_offset_in_bytes = 0;
  j->msg_len_to_cipher_in_bytes = text;
  j->hash_start_src_offset_in_bytes = 0;
  j->msg_len_to_hash_in_bytes = text;
  j->iv = nonce.data();
  j->iv_len_in_bytes = kNonceSize;
  // Seal writes the tag where the message wants it; open writes it to scratch, so the
  // received tag stays in the buffer to compare against.
  j->auth_tag_output = seal ? job.data + job.length : tags_[slot].data();
  j->auth_tag_output_len_in_bytes = kTagSize;
  j->u.CHACHA20_POLY1305.aad = nullptr;
  j->u.CHACHA20_POLY1305.aad_len_in_bytes = 0;
  j->user_data = &job;
  j->user_data2 = reinterpret_cast<void*>(static_cast<uintptr_t>(slot));
}

void IpsecMbBackend::complete(const IMB_JOB& done, bool seal) {
  AeadJob& job = *static_cast<AeadJob*>(done.user_data);
  const size_t slot = reinterpret_cast<uintptr_t>(done.user_data2);
  if (done.status != IMB_STATUS_COMPLETED) {
    // The library refused the job before touching the buffer (it validates first):
    // the reference path does it instead. Not expected; the self-test would notice.
    if (seal) {
      aead_seal(job.data, job.data, job.length, job.counter, *job.key, {});
      job.ok = true;
    } else {
      job.ok = aead_open(job.data, job.data, job.length, job.counter, *job.key, {});
    }
    return;
  }
  if (seal) {
    job.ok = true;
    return;
  }
  open_checked(job, slot);
}

void IpsecMbBackend::open_checked(AeadJob& job, size_t slot) {
  const size_t text = job.length - kTagSize;
  job.ok = sodium_memcmp(tags_[slot].data(), job.data + text, kTagSize) == 0;
  if (job.ok) return;
  // Forged: put the ciphertext back (see the top of this file). Block 0 of the
  // keystream made the Poly1305 key; the payload starts at block 1.
  crypto_stream_chacha20_ietf_xor_ic(job.data, job.data, text, nonces_[slot].data(), 1,
                                     job.key->data());
}

}  // namespace

Result<std::unique_ptr<AeadBackend>> make_ipsecmb_backend() {
  IMB_MGR* mgr = alloc_mb_mgr(0);
  if (!mgr) return Error{"intel-ipsec-mb could not allocate its job manager"};
  IMB_ARCH arch = IMB_ARCH_NONE;
  init_mb_mgr_auto(mgr, &arch);
  const int err = imb_get_errno(mgr);
  if (err != 0 || arch < IMB_ARCH_SSE) {
    free_mb_mgr(mgr);
    return Error{std::string("intel-ipsec-mb cannot run on this CPU: ") +
                 (err != 0 ? imb_get_strerror(err) : "no supported instruction set")};
  }
  return std::unique_ptr<AeadBackend>(std::make_unique<IpsecMbBackend>(mgr, arch));
}

}  // namespace faraday::crypto

#else  // !FARADAY_HAVE_IPSECMB

namespace faraday::crypto {

Result<std::unique_ptr<AeadBackend>> make_ipsecmb_backend() {
  return Error{"built without intel-ipsec-mb (libipsec-mb-dev)"};
}

}  // namespace faraday::crypto

#endif
