#include "resp.hpp"

#include <hiredis/hiredis.h>

#include <openssl/crypto.h>

#include <cstdlib>
#include <new>

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

// hiredis's own reply constructors, copied once from a reader made with them.
const redisReplyObjectFunctions& default_functions() {
    static const redisReplyObjectFunctions defaults = [] {
        redisReader* r = redisReaderCreate();
        if (!r) throw std::bad_alloc();
        const redisReplyObjectFunctions f = *r->fn;
        redisReaderFree(r);
        return f;
    }();
    return defaults;
}

} // namespace

// Refuses, before hiredis allocates its element pointers, an array that announces more elements
// than the limit could hold (each takes 3 bytes at least: "+\r\n"): 13 bytes would otherwise
// make it allocate gigabytes.
struct array_hook {
    static void* create(const redisReadTask* task, int elements) {
        auto* self = static_cast<reply_reader*>(task->privdata);
        if (elements > 0 && static_cast<std::size_t>(elements) > self->max_bytes_ / 3) {
            self->array_too_long_ = true;
            return nullptr; // hiredis: out of memory, the reader fails
        }
        return default_functions().createArray(task, elements);
    }
    static redisReplyObjectFunctions* functions() {
        static redisReplyObjectFunctions f = [] {
            auto copy = default_functions();
            copy.createArray = &array_hook::create;
            return copy;
        }();
        return &f;
    }
};

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
    OPENSSL_cleanse(command, static_cast<std::size_t>(n));
    redisFreeCommand(command);
}

void reply_reader::reader_free::operator()(redisReader* r) const { redisReaderFree(r); }

reply_reader::reply_reader(std::size_t max_bytes)
    : reader_(redisReaderCreateWithFunctions(array_hook::functions())), max_bytes_(max_bytes) {
    if (!reader_) throw std::bad_alloc();
    reader_->privdata = this; // for array_hook; a reader is neither copied nor moved
}

std::size_t reply_reader::buffered() const noexcept { return reader_->len - reader_->pos; }

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
        return error_code(array_too_long_ ? errc::body_too_large : errc::malformed_response);
    }
    if (!raw) return std::optional<reply>();
    std::unique_ptr<redisReply, void (*)(void*)> r(static_cast<redisReply*>(raw), freeReplyObject);
    // What is still buffered belongs to the replies after this one.
    pending_ = reader_->len - reader_->pos;
    return std::optional<reply>(convert(*r));
}

} // namespace tokenflight::redis
