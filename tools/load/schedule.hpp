// tokenflight-load's open-model arrival schedule (-R): a constant rate, or stages that ramp the
// rate linearly from one target to the next, as k6's ramping-arrival-rate does.
#ifndef TOKENFLIGHT_LOAD_SCHEDULE_HPP
#define TOKENFLIGHT_LOAD_SCHEDULE_HPP

#include <tokenflight/token.hpp> // clock

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tokenflight::load {

/// One stage of -R: the rate reaches `target` (requests/s) at the end of `length`, linearly from
/// the previous stage's target (0 before the first). A zero length is a step.
struct rate_stage {
    double target = 0;
    clock::duration length{};
};

/// When each request of a run is due. Requests are numbered from 0 in the run's global sequence;
/// request i is due when the rate's integral from the start reaches i, so a constant rate R puts
/// it at i / R, and a ramp from 0 puts the first request at the start.
class rate_schedule {
public:
    /// `rate` requests per second (above 0), for as long as the run lasts.
    static rate_schedule constant(double rate);
    /// The stages one after the other; the schedule ends with the last.
    static rate_schedule staged(std::vector<rate_stage> stages);

    /// When request `i` is due, from the run's start; nullopt when the schedule ends before.
    std::optional<clock::duration> due(std::uint64_t i) const;
    /// How long the stages last together; nullopt for a constant rate.
    std::optional<clock::duration> length() const;
    /// The number of requests the stages schedule; nullopt for a constant rate.
    std::optional<std::uint64_t> requests() const;
    /// The rate (requests/s) at `t` from the start (0 after the last stage).
    double rate_at(clock::duration t) const;

private:
    struct segment {
        double begin_s = 0, length_s = 0; // when, in seconds from the start
        double from = 0, to = 0;          // the rate at its beginning and at its end
        double first = 0;                 // the rate's integral up to its beginning
        double count() const { return (from + to) / 2 * length_s; }
    };
    std::vector<segment> segments_;
    bool endless_ = false; // a constant rate: one segment without end
};

/// Parses -R: a rate ("2500") or stages ("1000:30s,5000:60s,0:10s"; lengths in ms, s, m or h).
/// The message for a bad value says what was expected.
std::variant<rate_schedule, std::string> parse_rate(std::string_view text);

} // namespace tokenflight::load

#endif
