// fuzz_config: any bytes as the TOML configuration file of `faradayd cluster`
// and of farad, through the checks that turn it into options. Nothing may
// crash, leak or read out of bounds; a file that loads prints (to_text) as a
// file that loads again to the same configuration.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "control/cluster_settings.h"
#include "farad/settings.h"

using namespace faraday;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  control::ClusterConfig cluster;
  Status loaded = control::load_cluster_config_text(text, "fuzz.toml", &cluster);
  if (loaded) {
    auto options = control::to_cluster_options(cluster);
    if (!options && options.error().empty()) __builtin_trap();  // every refusal says why
    std::string printed = control::cluster_config_text(cluster);
    control::ClusterConfig again;
    if (!control::load_cluster_config_text(printed, "printed.toml", &again) ||
        control::cluster_config_text(again) != printed) {
      __builtin_trap();
    }
  } else if (loaded.error().empty()) {
    __builtin_trap();  // every refusal says why
  }

  farad::Config farad_config;
  loaded = farad::load_config_text(text, "fuzz.toml", &farad_config);
  if (loaded) {
    auto options = farad::to_server_options(farad_config);
    if (!options && options.error().empty()) __builtin_trap();
  } else if (loaded.error().empty()) {
    __builtin_trap();
  }
  return 0;
}
