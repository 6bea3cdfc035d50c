// containers.h: faradayd's side of faraday-cni (rkt/): each container's
// interface and address on this node.
//
// ADD (add()): an address from the node's container prefix (the prefix's first
// address is the gateway, faradayd itself; the rest go to containers, lowest
// free first), written to the state file before anything else is made, so a
// restarted faradayd never hands out an address a container still holds. Then a
// TAP device, persistent (it outlives faradayd), moved into the container's
// network namespace under the name the runtime asked for, brought up with the
// address on the prefix's subnet and a default route via the gateway; and its
// descriptor handed to the data path (dataplane/container_port.h), which
// answers ARP/ND as the gateway and carries the container's packets into the
// mesh only. Anything that fails undoes what was made, and the answer says
// what failed.
//
// DEL (del()): idempotent. The data path lets go of the TAP, which is deleted
// (from its namespace at once while that is still the container's, and the
// interface of that name still the TAP), and the address is released. One
// that is not known (a second DEL) succeeds.
//
// CHECK (check()): that the attachment is known, that the data path holds its
// TAP, and that the interface, its address and its default route are still in
// the namespace; otherwise an error that says which and why.
//
// Restart (open()): every attachment in the state file is attached again
// (faradayd opens the persistent TAP in the container's namespace), or, when its
// namespace is gone, released. One whose interface is gone keeps its address
// (the container may still run) and CHECK reports why. On every ADD, too,
// attachments whose namespace path no longer exists are released.
//
// Threads: the control thread only. Namespace work runs on a short-lived
// thread that enters the container's namespace, so the control thread never
// leaves its own.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/ctl_server.h"
#include "dataplane/container_port.h"
#include "dataplane/data_path.h"
#include "dataplane/net.h"
#include "result.h"

namespace faraday::control {

// Why a CNI request failed, with the code faraday-cni answers the runtime
// (the CNI spec's codes; kCniExists is this plugin's own).
struct CniFailure {
  std::string message;
  int code = 5;
};
inline constexpr int kCniUnknownContainer = 3;
inline constexpr int kCniIoFailure = 5;
inline constexpr int kCniInvalidConfig = 7;
inline constexpr int kCniTryAgainLater = 11;
inline constexpr int kCniPluginNotAvailable = 50;  // STATUS
inline constexpr int kCniExists = 100;             // ADD of an interface the namespace already has

// What a namespace file was when the container was added (nsfs device and
// inode): a path may come to name another namespace (a reused PID, a name
// made again).
struct NamespaceIdentity {
  uint64_t dev = 0;
  uint64_t ino = 0;
  bool operator==(const NamespaceIdentity&) const = default;
};

struct ContainersOptions {
  std::string ifname;  // faradayd's WireGuard interface, for logs
  dataplane::Prefix prefix;
  uint32_t mtu = 1420;
  std::string state_path;  // the attachments, kept across restarts
};

class Containers {
 public:
  // Runs a command on the data path's thread (the control thread's queue to it).
  using Publish = std::function<void(dataplane::DataPath::Command)>;

  // Reads the state file (missing: none yet), attaches again what it lists,
  // releases what lost its namespace, and publishes. An error when the file
  // cannot be read or parsed (nothing is guessed: the operator decides) or
  // names addresses outside `prefix`.
  static Result<std::unique_ptr<Containers>> open(ContainersOptions options, Publish publish);

  struct Added {
    std::string ifname;
    std::string mac;      // the container's side
    std::string sandbox;  // the namespace path
    std::string address;  // "10.99.1.2/24"
    std::string gateway;  // "10.99.1.1"
    int family = 4;
  };
  // network: the CNI network's name (GC lists by it); may be empty.
  Result<Added, CniFailure> add(const std::string& id, const std::string& ifname,
                                const std::string& netns, const std::string& network);
  // Only the namespace ADD was given is acted on, and only while it is still
  // that namespace and the interface there is still the TAP.
  Result<void, CniFailure> del(const std::string& id, const std::string& ifname);
  Result<void, CniFailure> check(const std::string& id, const std::string& ifname,
                                 const std::string& netns);
  // (container ID, interface, network) of every attachment, for the runtime's GC.
  struct Listed {
    std::string id;
    std::string ifname;
    std::string network;
  };
  std::vector<Listed> list() const;

  size_t size() const { return attachments_.size(); }
  const dataplane::Prefix& prefix() const { return options_.prefix; }

 private:
  struct Attachment {
    std::string id;
    std::string ifname;
    std::string netns;
    std::string network;        // the CNI network's name, for GC; may be empty
    dataplane::Prefix address;  // host prefix
    NamespaceIdentity ns;       // what netns was at ADD
    int ifindex = 0;            // in that namespace: the TAP, not another of its name
    std::shared_ptr<dataplane::ContainerTap> tap;  // null: not attached (problem says why)
    std::string problem;
  };

  Containers(ContainersOptions options, Publish publish);
  Status load();
  Status save() const;
  // Opens the attachment's namespace if it is still the one ADD saw.
  Result<int> open_same(const Attachment& a) const;
  void publish() const;
  void attach_again(Attachment& a);
  // Releases attachments whose namespace path is gone; true if any was.
  bool sweep();
  std::optional<dataplane::Prefix> allocate() const;
  dataplane::Prefix gateway() const;
  Attachment* find(const std::string& id, const std::string& ifname);

  ContainersOptions options_;
  Publish publish_;
  std::vector<Attachment> attachments_;
};

// The control socket's commands for faraday-cni (rkt/plugin.h), answered
// from `containers`: cni-add ID IFNAME NETNS [NETWORK], cni-del ID IFNAME [NETNS],
// cni-check ID IFNAME NETNS, cni-status and cni-list. An error is
// {"error": MESSAGE, "code": CNI_CODE}.
void add_cni_commands(CtlServer::Commands& commands, Containers* containers,
                      const std::string& ifname);

}  // namespace faraday::control
