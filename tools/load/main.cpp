// tokenflight-load: an OAuth-aware HTTP load generator. See --help, and README.md.
#include "config.hpp"
#include "demo.hpp"
#include "event_loops.hpp"
#include "fleet_run.hpp"
#include "report.hpp"
#include "run_load.hpp"
#include "runner.hpp"
#include "senders.hpp"

#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

namespace tf = tokenflight;

namespace {

constexpr int exit_ok = 0, exit_not_all_2xx = 1, exit_usage = 2;

int fail_setup(const std::string& message) {
    std::cerr << "tokenflight-load: " << message << '\n';
    return exit_usage;
}

void warn_if_insecure(const tf::load::config& cfg) {
    if (cfg.insecure)
        std::cerr << "tokenflight-load: warning: --insecure: TLS certificates are not verified, "
                     "for the API and the token endpoint alike\n";
}

int run(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    auto parsed = tf::load::parse_command_line(
        args, [](const char* name) { return std::getenv(name); },
        std::thread::hardware_concurrency());
    if (auto* e = std::get_if<tf::load::usage_error>(&parsed))
        return fail_setup(e->message);
    auto cfg = std::move(std::get<tf::load::config>(parsed));
    if (cfg.help) {
        std::cout << tf::load::usage();
        return exit_ok;
    }

    // An output file that cannot be written fails now, not after the run.
    for (const auto* file : {&cfg.timeline_file, &cfg.report_file})
        if (!file->empty())
            if (auto why = tf::load::check_writable(*file)) return fail_setup(*why);

    if (!cfg.collect_id.empty()) return tf::load::collect_run(cfg);
    if (cfg.demo_servers) return tf::load::serve_demo(cfg);

    // Declared in this order so that they go away in the reverse one: the senders (and the
    // servers they talk to) before the event loops stop, the demo's servers last.
    auto demo = cfg.demo ? tf::load::start_demo(cfg) : nullptr;
    tf::load::event_loops loops(cfg.threads);
    warn_if_insecure(cfg);
    auto token_server = cfg.demo_token_server ? tf::load::start_token_server(cfg.creds, cfg.dpop) : nullptr;
    auto made = tf::load::make_senders(cfg, std::move(cfg.creds), loops);
    if (auto* e = std::get_if<tf::load::setup_error>(&made))
        return fail_setup(e->message);
    const auto& senders = std::get<tf::load::senders>(made);

    // A worker of a distributed run starts when the others have their first token too.
    if (!cfg.run_id.empty())
        if (auto why = tf::load::join_run(cfg)) return fail_setup(*why);
    tf::load::tally results(cfg.targets.size());
    results.story = senders.story.get();
    const auto run = tf::load::run_load(cfg, loops, senders, results, demo.get());
    const tf::load::run_report report(cfg, results, senders, run);
    tf::load::print_report(report);
    if (!cfg.timeline_file.empty())
        if (auto why = tf::load::write_file(cfg.timeline_file, tf::load::timeline_csv(report)))
            return fail_setup(*why);
    if (!cfg.report_file.empty()) {
        if (auto why = tf::load::write_file(cfg.report_file, tf::load::html_report(report))) return fail_setup(*why);
        // With --json, stdout is the JSON alone.
        (cfg.json ? std::cerr : std::cout) << "report: " << cfg.report_file << '\n';
    }
    if (!cfg.run_id.empty())
        if (auto why = tf::load::push_result(cfg, tf::load::json_report(report))) return fail_setup(*why);
    return report.sum.ok == report.sum.requests ? exit_ok : exit_not_all_2xx;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "tokenflight-load: " << e.what() << '\n';
        return exit_usage;
    }
}
