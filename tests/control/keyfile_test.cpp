// keyfile_test.cpp: load_or_create_private_key() on a real file system, and its
// agreement with wireguard-tools (`wg genkey`, `wg pubkey`) when they are installed.
#include "control/keyfile.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "crypto/x25519.h"
#include "tests/lib/programs.h"
#include "tests/lib/temp_dir.h"

namespace faraday::control {
namespace {

namespace fs = std::filesystem;

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

// `wg pubkey` of the key file at `path`, without the trailing newline.
std::string wg_pubkey(const std::string& path) {
  std::string out = testing::run_shell("wg pubkey < '" + path + "'").out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool have_wg() {
  return std::system("command -v wg >/dev/null 2>&1") == 0;
}

mode_t mode_of(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

class KeyfileTest : public ::testing::Test {
 protected:
  crypto::Key load_ok(bool expect_created) {
    bool created = !expect_created;
    auto result = load_or_create_private_key(path_, &created);
    EXPECT_TRUE(result.ok()) << (result ? "" : result.error());
    EXPECT_EQ(created, expect_created);
    if (!result) return {};
    return *result;
  }

  std::string load_error() {
    bool created = true;
    auto result = load_or_create_private_key(path_, &created);
    EXPECT_FALSE(created);
    EXPECT_FALSE(result.ok());
    if (result) return {};
    return result.error();
  }

  testing::TempDir tmp_{"faraday-keyfile"};
  std::string dir_ = tmp_.path();
  std::string path_ = dir_ + "/wg.key";
};

TEST_F(KeyfileTest, CreatesMode0600FileInWgFormat) {
  crypto::Key key = load_ok(true);
  EXPECT_FALSE(crypto::is_zero(key));
  EXPECT_EQ(mode_of(path_), 0600u);
  std::string text = testing::slurp(path_);
  ASSERT_EQ(text.size(), 45u);
  EXPECT_EQ(text.back(), '\n');
  auto parsed = crypto::key_from_base64(std::string_view(text).substr(0, 44));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, key);
  // Only the key file is left in the directory: no temporary file.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(KeyfileTest, ReloadGivesSameKeyAndPublicKey) {
  crypto::Key first = load_ok(true);
  crypto::Key second = load_ok(false);
  EXPECT_EQ(first, second);
  EXPECT_EQ(crypto::x25519_public(first), crypto::x25519_public(second));
  EXPECT_EQ(mode_of(path_), 0600u);
}

TEST_F(KeyfileTest, CreatedPointerMayBeNull) {
  auto a = load_or_create_private_key(path_, nullptr);
  auto b = load_or_create_private_key(path_, nullptr);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
}

TEST_F(KeyfileTest, Mode0600WhateverTheUmask) {
  mode_t old = umask(0);
  load_ok(true);
  umask(old);
  EXPECT_EQ(mode_of(path_), 0600u);
}

TEST_F(KeyfileTest, AcceptsKeyWithoutNewlineOrWithCrLf) {
  crypto::Key key = crypto::x25519_generate_private();
  write_file(path_, crypto::to_base64(key), 0600);
  EXPECT_EQ(load_ok(false), key);
  write_file(path_, crypto::to_base64(key) + "\r\n", 0400);
  EXPECT_EQ(load_ok(false), key);
}

TEST_F(KeyfileTest, RefusesGroupOrOtherAccess) {
  crypto::Key key = crypto::x25519_generate_private();
  const std::string text = crypto::to_base64(key) + "\n";
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602}) {
    SCOPED_TRACE(mode);
    write_file(path_, text, mode);
    std::string err = load_error();
    EXPECT_NE(err.find(path_), std::string::npos) << err;
    EXPECT_NE(err.find("chmod 600"), std::string::npos) << err;
    EXPECT_EQ(err.find(crypto::to_base64(key)), std::string::npos) << "error leaks the key";
    EXPECT_EQ(testing::slurp(path_), text) << "an existing key file must never be rewritten";
  }
}

TEST_F(KeyfileTest, RefusesMalformedContent) {
  crypto::Key key = crypto::x25519_generate_private();
  const std::string b64 = crypto::to_base64(key);
  const std::string cases[] = {
      "",
      "\n",
      "not a key\n",
      b64.substr(0, 43) + "\n",    // truncated
      b64 + b64 + "\n",            // two keys
      b64 + "\nsecond line\n",     // trailing junk
      crypto::to_hex(key) + "\n",  // hex is the UAPI form, not the file form
      std::string(4096, 'A'),      // long
      b64.substr(0, 20) + " " + b64.substr(20) + "\n",
  };
  for (const auto& text : cases) {
    SCOPED_TRACE(text.substr(0, 60));
    write_file(path_, text, 0600);
    std::string err = load_error();
    EXPECT_NE(err.find(path_), std::string::npos) << err;
    EXPECT_NE(err.find("malformed"), std::string::npos) << err;
    EXPECT_EQ(err.find(b64.substr(0, 16)), std::string::npos) << "error leaks the key";
  }
}

TEST_F(KeyfileTest, RefusesDirectory) {
  ASSERT_EQ(mkdir(path_.c_str(), 0700), 0);
  std::string err = load_error();
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
}

TEST_F(KeyfileTest, MissingDirectoryIsAClearError) {
  path_ = dir_ + "/missing/wg.key";
  std::string err = load_error();
  EXPECT_NE(err.find(path_), std::string::npos) << err;
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir_ + "/missing"));
}

TEST_F(KeyfileTest, EmptyPathIsAClearError) {
  path_ = "";
  EXPECT_NE(load_error().find("not a file path"), std::string::npos);
}

TEST_F(KeyfileTest, ReadsWgGenkeyOutput) {
  if (!have_wg()) GTEST_SKIP() << "wireguard-tools (wg) not installed";
  ASSERT_EQ(std::system(("umask 077 && wg genkey > '" + path_ + "'").c_str()), 0);
  crypto::Key key = load_ok(false);
  std::string pub = wg_pubkey(path_);
  EXPECT_EQ(crypto::to_base64(crypto::x25519_public(key)), pub);
}

TEST_F(KeyfileTest, CreatedKeyReadsInWgPubkey) {
  if (!have_wg()) GTEST_SKIP() << "wireguard-tools (wg) not installed";
  crypto::Key key = load_ok(true);
  std::string pub = wg_pubkey(path_);
  EXPECT_EQ(pub.size(), 44u);
  EXPECT_EQ(crypto::to_base64(crypto::x25519_public(key)), pub);
}

}  // namespace
}  // namespace faraday::control
