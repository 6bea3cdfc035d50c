#include "control/keyfile.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <string_view>
#include <system_error>

#include "crypto/x25519.h"

namespace faraday::control {

namespace {

// A key file is 44 base64 characters and a newline; anything much longer is not one.
constexpr size_t kMaxFileSize = 128;
constexpr int kTempAttempts = 16;

std::string reason(int err) {
  return std::error_code(err, std::generic_category()).message();
}

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Reads and checks an open key file. The buffer holding the text is wiped.
Result<crypto::Key> read_key(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Error{fmt::format("key file {}: stat: {}", path, reason(errno))};
  if (!S_ISREG(st.st_mode)) return Error{fmt::format("key file {}: not a regular file", path)};
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    return Error{fmt::format(
        "key file {}: refusing a private key that group or other may access (mode {:04o}); "
        "chmod 600 it",
        path, st.st_mode & 07777)};

  char buf[kMaxFileSize + 1];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof(buf) - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      crypto::wipe(buf, sizeof(buf));
      return Error{fmt::format("key file {}: read: {}", path, reason(errno))};
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
    if (len == sizeof(buf)) break;
  }

  std::string_view text(buf, len);
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  std::optional<crypto::Key> key;
  if (len <= kMaxFileSize) key = crypto::key_from_base64(text);
  crypto::wipe(buf, sizeof(buf));
  if (!key)
    return Error{fmt::format(
        "key file {}: malformed: expected one base64 WireGuard private key as `wg genkey` "
        "writes it",
        path)};
  return *key;
}

// Writes the whole of data to fd; false with errno set on failure.
bool write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

Result<crypto::Key> load(const std::string& path, bool* found) {
  *found = true;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) {
      *found = false;
      return Error{};  // not read by the caller
    }
    return Error{fmt::format("key file {}: open: {}", path, reason(errno))};
  }
  auto result = read_key(fd, path);
  close(fd);
  return result;
}

// Creates a temporary file beside path, O_EXCL and mode 0600. Returns the fd (and
// sets temp) or -1 with errno set.
int create_temp(const std::string& path, std::string& temp) {
  std::string dir = directory_of(path);
  std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  for (int attempt = 0; attempt < kTempAttempts; ++attempt) {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    temp = fmt::format("{}/.{}.tmp-{}-{}", dir, base, getpid(), ts.tv_nsec + attempt);
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

}  // namespace

Result<crypto::Key> load_or_create_private_key(const std::string& path, bool* created) {
  if (created != nullptr) *created = false;
  if (path.empty() || path.back() == '/')
    return Error{fmt::format("key file \"{}\": not a file path", path)};

  bool found = false;
  auto existing = load(path, &found);
  if (found) return existing;

  const std::string dir = directory_of(path);
  std::string temp;
  int fd = create_temp(path, temp);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR)
      return Error{
          fmt::format("key file {}: cannot create it: directory {} does not exist", path, dir)};
    return Error{fmt::format("key file {}: cannot create it in {}: {}", path, dir, reason(err))};
  }
  auto fail = [&](std::string_view what, int err) {
    close(fd);
    unlink(temp.c_str());
    return Error{fmt::format("key file {}: {}: {}", path, what, reason(err))};
  };
  // Exactly 0600 whatever the umask.
  if (fchmod(fd, 0600) != 0) return Error{fail("chmod temporary file", errno)};

  crypto::Key key = crypto::x25519_generate_private();
  std::string text = crypto::to_base64(key) + "\n";
  bool written = write_all(fd, text.data(), text.size());
  int err = errno;
  crypto::wipe(text.data(), text.size());
  if (!written) {
    crypto::wipe(key);
    return Error{fail("write temporary file", err)};
  }
  if (fsync(fd) != 0) {
    crypto::wipe(key);
    return Error{fail("fsync temporary file", errno)};
  }
  close(fd);

  // Never replace a key another process put there meanwhile: that one is in use.
  int rc = renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
  if (rc != 0 && errno == EINVAL) {
    // The file system has no RENAME_NOREPLACE: link() fails on an existing name too.
    rc = link(temp.c_str(), path.c_str());
    if (rc == 0 || errno == EEXIST) unlink(temp.c_str());
  }
  if (rc != 0) {
    err = errno;
    unlink(temp.c_str());
    crypto::wipe(key);
    if (err == EEXIST) {
      auto theirs = load(path, &found);
      if (found) return theirs;
    }
    return Error{fmt::format("key file {}: rename into place: {}", path, reason(err))};
  }

  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0 || fsync(dir_fd) != 0) {
    err = errno;
    if (dir_fd >= 0) close(dir_fd);
    crypto::wipe(key);
    return Error{fmt::format("key file {}: fsync directory {}: {}", path, dir, reason(err))};
  }
  close(dir_fd);
  if (created != nullptr) *created = true;
  return key;
}

}  // namespace faraday::control
