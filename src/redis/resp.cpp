#include "resp.hpp"

#include <hiredis/hiredis.h>

#include <cstdlib>

namespace tokenflight::redis {

namespace {

reply convert(const redisReply& r) {
    reply out;
    switch (r.type) {
    case REDIS_REPLY_STRING: out.type = reply::kind::string; break;
    case REDIS_REPLY_STATUS: out.type = reply::kind::status; break;
    case REDIS_REPLY_ERROR: out.type = reply::kind::error; break;
    case REDIS_REPLY_INTEGER: out.type = reply::kind::integer; break;
    case REDIS_REPLY_ARRAY: out.type = reply::kind::array; break;
    default: out.type = reply::kind::nil; break;
    }
    if (r.str && (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS || r.type == REDIS_REPLY_ERROR))
        out.text.assign(r.str, r.len);
    out.integer = r.integer;
    if (r.type == REDIS_REPLY_ARRAY) {
        out.elements.reserve(r.elements);
        for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
    }
    return out;
}

} // namespace

void append_command(std::string& out, const std::vector<std::string_view>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (auto a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    char* command = nullptr;
    const int n = redisFormatCommandArgv(&command, static_cast<int>(args.size()), argv.data(), lengths.data());
    if (n < 0 || !command) throw std::bad_alloc();
    out.append(command, static_cast<std::size_t>(n));
    redisFreeCommand(command);
}

void reply_reader::reader_free::operator()(redisReader* r) const { redisReaderFree(r); }

reply_reader::reply_reader(std::size_t max_bytes) : reader_(redisReaderCreate()), max_bytes_(max_bytes) {
    if (!reader_) throw std::bad_alloc();
}

reply_reader::~reply_reader() = default;

error_code reply_reader::feed(std::string_view bytes) {
    if (failed_) return errc::malformed_response;
    pending_ += bytes.size();
    if (pending_ > max_bytes_) {
        failed_ = true;
        return errc::body_too_large;
    }
    if (redisReaderFeed(reader_.get(), bytes.data(), bytes.size()) != REDIS_OK) {
        failed_ = true;
        return errc::malformed_response;
    }
    return {};
}

boost::system::result<std::optional<reply>> reply_reader::next() {
    if (failed_) return error_code(errc::malformed_response);
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
        failed_ = true;
        return error_code(errc::malformed_response);
    }
    if (!raw) return std::optional<reply>();
    std::unique_ptr<redisReply, void (*)(void*)> r(static_cast<redisReply*>(raw), freeReplyObject);
    // What is still buffered belongs to the replies after this one.
    pending_ = reader_->len - reader_->pos;
    return std::optional<reply>(convert(*r));
}

} // namespace tokenflight::redis
