// settings_table.h: one table of settings drives a program's TOML configuration
// file, its command-line options and their --help text (farad and `faradayd
// cluster` use it). Each setting has one name: the TOML key of a flat file
// (`expiry = 30`) and the option `--expiry 30`. The command line wins over the
// file, the file over the built-in default. Unknown keys and wrong types are
// errors that name the file, the key and the program to ask for --help.
//
// Types: strings, non-negative integers, numbers (seconds and the like), and
// lists of strings (a TOML array; a repeatable option on the command line).
//
// Pure functions over the caller's Config: any thread.
#pragma once

#include <fmt/core.h>
#include <fmt/format.h>

#include <toml++/toml.h>
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "result.h"

namespace faraday::settings {

template <typename Config>
struct Setting {
  using Field = std::variant<std::string Config::*, double Config::*, uint64_t Config::*,
                             std::vector<std::string> Config::*>;
  const char* name;
  const char* help;
  Field field;
};

template <typename Config>
using Table = std::vector<Setting<Config>>;

namespace detail {

template <typename Config>
std::string default_text(const Config& c, const typename Setting<Config>::Field& f) {
  return std::visit(
      [&](auto member) -> std::string {
        using T = std::decay_t<decltype(c.*member)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return c.*member;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return fmt::format("{}", fmt::join(c.*member, ", "));
        } else {
          return fmt::format("{}", c.*member);
        }
      },
      f);
}

}  // namespace detail

// Registers one option per setting on `app`, writing into *cli. The help text
// ends with the default, when it is not empty.
template <typename Config>
void add_options(CLI::App& app, const Table<Config>& table, Config* cli) {
  const Config defaults;
  for (const Setting<Config>& s : table) {
    std::string flag = std::string("--") + s.name;
    std::string dflt = detail::default_text(defaults, s.field);
    std::string help = s.help;
    if (!dflt.empty()) help += fmt::format(" [default: {}]", dflt);
    std::visit([&](auto member) { app.add_option(flag, cli->*member, help); }, s.field);
  }
}

// Copies the options the user gave on the command line (after app.parse) into *out.
template <typename Config>
void apply_cli_overrides(const CLI::App& app, const Table<Config>& table, const Config& cli,
                         Config* out) {
  for (const Setting<Config>& s : table) {
    const CLI::Option* opt = app.get_option(std::string("--") + s.name);
    if (opt->count() == 0) continue;
    std::visit([&](auto member) { out->*member = cli.*member; }, s.field);
  }
}

// Reads TOML text into *out (keys not in the text keep their value); `source`
// names it in errors (the file's path). An error naming the source, key and
// problem on failure; *out may then be partly updated.
template <typename Config>
Status load_text(std::string_view text, const std::string& source, const Table<Config>& table,
                 const char* program, Config* out) {
  toml::table doc;
  try {
    doc = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Error{fmt::format("{}:{}:{}: {}", source, where.line, where.column, e.description())};
  }
  const std::string& path = source;
  for (const auto& entry : doc) {
    std::string_view k = entry.first.str();
    const toml::node& node = entry.second;
    const Setting<Config>* s = nullptr;
    for (const Setting<Config>& cand : table) {
      if (k == cand.name) s = &cand;
    }
    if (!s) {
      return Error{fmt::format("{}: unknown setting {:?} (see {} --help)", path, k, program)};
    }
    bool ok = std::visit(
        [&](auto member) {
          using T = std::decay_t<decltype(out->*member)>;
          if constexpr (std::is_same_v<T, std::string>) {
            auto v = node.template value<std::string>();
            if (!v || !node.is_string()) return false;
            out->*member = *v;
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            const toml::array* arr = node.as_array();
            if (!arr) return false;
            std::vector<std::string> items;
            for (const toml::node& item : *arr) {
              auto v = item.template value<std::string>();
              if (!v || !item.is_string()) return false;
              items.push_back(*v);
            }
            out->*member = std::move(items);
          } else if constexpr (std::is_same_v<T, double>) {
            if (!node.is_number()) return false;
            out->*member = *node.template value<double>();
          } else {
            auto v = node.template value<int64_t>();
            if (!node.is_integer() || !v || *v < 0) return false;
            out->*member = static_cast<uint64_t>(*v);
          }
          return true;
        },
        s->field);
    if (!ok) {
      return Error{
          fmt::format("{}: setting {:?} has the wrong type (see {} --help)", path, k, program)};
    }
  }
  return {};
}

// Reads a TOML file into *out, as load_text().
template <typename Config>
Status load_file(const std::string& path, const Table<Config>& table, const char* program,
                 Config* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error{fmt::format("{}: cannot read: {}", path, std::strerror(errno))};
  }
  std::stringstream text;
  text << in.rdbuf();
  return load_text(text.str(), path, table, program, out);
}

namespace detail {

// A TOML basic string ("..."): it holds any text a file loaded (toml++'s own
// writer picks a literal string, '...', which cannot hold a newline or a
// quote, and the file printed would not load again).
inline std::string basic_string(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += ch;  // UTF-8 passes as it is: what loaded was valid
        }
    }
  }
  return out + "\"";
}

}  // namespace detail

// The configuration as a TOML file the program would accept, in the table's
// order: strings as basic strings (detail::basic_string), the rest as toml++
// writes them.
template <typename Config>
std::string to_text(const Table<Config>& table, const Config& c) {
  std::ostringstream s;
  for (const Setting<Config>& setting : table) {
    toml::table line;
    bool written = false;
    std::visit(
        [&](auto member) {
          using T = std::decay_t<decltype(c.*member)>;
          if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            s << setting.name << " = [";
            for (size_t i = 0; i < (c.*member).size(); ++i)
              s << (i ? ", " : "") << detail::basic_string((c.*member)[i]);
            s << "]\n";
            written = true;
          } else if constexpr (std::is_same_v<T, std::string>) {
            s << setting.name << " = " << detail::basic_string(c.*member) << "\n";
            written = true;
          } else if constexpr (std::is_same_v<T, uint64_t>) {
            line.insert(setting.name, static_cast<int64_t>(c.*member));
          } else {
            line.insert(setting.name, c.*member);
          }
        },
        setting.field);
    if (!written) s << line << "\n";
  }
  return s.str();
}

}  // namespace faraday::settings
