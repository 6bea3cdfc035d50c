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
  std::string error;

  control::ClusterConfig cluster;
  if (control::load_cluster_config_text(text, "fuzz.toml", &cluster, &error)) {
    control::ClusterOptions options;
    (void)control::to_cluster_options(cluster, &options, &error);
    std::string printed = control::cluster_config_text(cluster);
    control::ClusterConfig again;
    if (!control::load_cluster_config_text(printed, "printed.toml", &again, &error) ||
        control::cluster_config_text(again) != printed) {
      __builtin_trap();
    }
  } else if (error.empty()) {
    __builtin_trap();  // every refusal says why
  }

  error.clear();
  farad::Config farad_config;
  if (farad::load_config_text(text, "fuzz.toml", &farad_config, &error)) {
    farad::ServerOptions options;
    (void)farad::to_server_options(farad_config, &options, &error);
  } else if (error.empty()) {
    __builtin_trap();
  }
  return 0;
}
