// tokenflight-load's targets file (vegeta's http format) and --weights.
#include "targets.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <system_error>

#include <stdlib.h>

using namespace tokenflight;
using load::target;
using load::targets_error;
namespace fs = std::filesystem;

namespace {

// A read_body that serves `files` and records what it was asked for.
struct fake_files {
    std::map<std::string, std::string> files;
    std::vector<std::string> asked;
    std::function<std::optional<std::string>(const std::string&)> reader() {
        return [this](const std::string& path) -> std::optional<std::string> {
            asked.push_back(path);
            auto it = files.find(path);
            if (it == files.end()) return std::nullopt;
            return it->second;
        };
    }
};

std::vector<target> parsed(std::string_view text, fake_files files = {}) {
    auto r = load::parse_targets(text, "targets.txt", files.reader());
    if (auto* e = std::get_if<targets_error>(&r)) FAIL_CHECK(e->message);
    REQUIRE(std::holds_alternative<std::vector<target>>(r));
    return std::get<std::vector<target>>(std::move(r));
}

std::string error_of(std::string_view text, fake_files& files) {
    auto r = load::parse_targets(text, "targets.txt", files.reader());
    REQUIRE_MESSAGE(std::holds_alternative<targets_error>(r), text);
    const std::string& m = std::get<targets_error>(r).message;
    CHECK(m.find('\n') == std::string::npos);
    return m;
}

std::string error_of(std::string_view text) {
    fake_files none;
    return error_of(text, none);
}

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

using headers = std::vector<std::pair<std::string, std::string>>;

// A directory of its own under the temporary directory, removed with its contents.
class temp_dir {
public:
    temp_dir() {
        std::string pattern = (fs::temp_directory_path() / "tokenflight-targets-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp");
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    fs::path write(const std::string& name, std::string_view content) const {
        const fs::path p = path_ / name;
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// Changes the current directory for one test, and back.
class current_dir {
public:
    explicit current_dir(const fs::path& to) : old_(fs::current_path()) { fs::current_path(to); }
    ~current_dir() {
        std::error_code ec;
        fs::current_path(old_, ec);
    }
    current_dir(const current_dir&) = delete;
    current_dir& operator=(const current_dir&) = delete;

private:
    fs::path old_;
};

} // namespace

TEST_CASE("targets may follow each other without blank lines") {
    const auto t = parsed("GET https://api.example/a\n"
                          "X-One: 1\n"
                          "POST http://127.0.0.1:8080/b?x=1\n"
                          "DELETE https://api.example/c");
    REQUIRE(t.size() == 3);
    CHECK(t[0].method == http::verb::get);
    CHECK(t[0].url == "https://api.example/a");
    CHECK(t[0].headers == headers{{"X-One", "1"}});
    CHECK(t[1].method == http::verb::post);
    CHECK(t[1].url == "http://127.0.0.1:8080/b?x=1");
    CHECK(t[1].headers.empty());
    CHECK(t[2].method == http::verb::delete_);
    for (const auto& x : t) {
        CHECK(x.body.empty());
        CHECK(x.body_path.empty());
        CHECK(x.weight == 1);
    }
}

TEST_CASE("blank lines separate targets, however many, with spaces around lines trimmed") {
    const auto t = parsed("\n\n  GET https://api.example/a  \n\t X-One:   1 \t\n"
                          "\n \t \n\n"
                          "PUT\thttps://api.example/b\n\n");
    REQUIRE(t.size() == 2);
    CHECK(t[0].headers == headers{{"X-One", "1"}});
    CHECK(t[1].method == http::verb::put);
    CHECK(t[1].url == "https://api.example/b");
}

TEST_CASE("comment lines are skipped anywhere, without ending a target") {
    const auto t = parsed("# the API\n"
                          "GET https://api.example/a\n"
                          "# a header follows\n"
                          "  # indented\n"
                          "X-One: 1\n"
                          "#GET https://api.example/not-a-target\n"
                          "\n"
                          "# GET https://api.example/nor-this\n");
    REQUIRE(t.size() == 1);
    CHECK(t[0].headers == headers{{"X-One", "1"}});
}

TEST_CASE("CRLF line ends") {
    const auto t = parsed("GET https://api.example/a\r\nX-One: 1\r\n\r\nPOST https://api.example/b\r\n@body.json\r\n",
                          fake_files{{{"body.json", "{}\r\n"}}, {}});
    REQUIRE(t.size() == 2);
    CHECK(t[0].url == "https://api.example/a");
    CHECK(t[0].headers == headers{{"X-One", "1"}});
    CHECK(t[1].body_path == "body.json");
    CHECK(t[1].body == "{}\r\n"); // the body file's bytes, untouched
}

TEST_CASE("headers: repeats are kept in order, the value is everything after the first ':'") {
    const auto t = parsed("GET https://api.example/a\n"
                          "Accept: text/plain\n"
                          "X-Time:12:30:00\n"
                          "Accept:\t application/json\n"
                          "X-Empty:\n"
                          "X-Obs: caf\xC3\xA9 \t x\n");
    REQUIRE(t.size() == 1);
    CHECK(t[0].headers == headers{{"Accept", "text/plain"},
                                  {"X-Time", "12:30:00"},
                                  {"Accept", "application/json"},
                                  {"X-Empty", ""},
                                  {"X-Obs", "caf\xC3\xA9 \t x"}});
}

TEST_CASE("a body comes from the @file read_body returns, after the headers") {
    fake_files files{{{"orders/new.json", R"({"id":1})"}, {"empty", ""}}, {}};
    auto r = load::parse_targets("POST https://api.example/orders\n"
                                 "Content-Type: application/json\n"
                                 "@orders/new.json\n"
                                 "PUT https://api.example/empty\n"
                                 "@empty\n"
                                 "GET https://api.example/none\n",
                                 "targets.txt", files.reader());
    REQUIRE(std::holds_alternative<std::vector<target>>(r));
    const auto& t = std::get<std::vector<target>>(r);
    REQUIRE(t.size() == 3);
    CHECK(files.asked == std::vector<std::string>{"orders/new.json", "empty"}); // as written
    CHECK(t[0].headers == headers{{"Content-Type", "application/json"}});
    CHECK(t[0].body == R"({"id":1})");
    CHECK(t[0].body_path == "orders/new.json");
    CHECK(t[1].body.empty());
    CHECK(t[1].body_path == "empty");
    CHECK(t[2].body_path.empty());
}

TEST_CASE("a target's name: method and URL without user info or query") {
    CHECK(parsed("POST https://api.example/orders")[0].name() == "POST https://api.example/orders");
    target t;
    t.url = "https://user:hunter2@api.example/x?key=abc";
    CHECK(t.name() == "GET https://***@api.example/x?***");
}

TEST_CASE("error: no targets") {
    for (std::string_view text : {"", "\n\n", "# only a comment\n\n  # and another\r\n"}) {
        const auto m = error_of(text);
        CHECK(contains(m, "targets.txt: no targets"));
    }
}

TEST_CASE("error: unknown method, with the line number") {
    auto m = error_of("GET https://api.example/a\n\nGTE https://api.example/b\n");
    CHECK(m == "targets.txt:3: bad method 'GTE' (expected 'METHOD URL' or 'Name: value')");
    m = error_of("\nget https://api.example/a\n");
    CHECK(contains(m, "targets.txt:2: bad method 'get'"));
    CHECK(contains(m, "case-sensitive"));
    // Something that is no method may be a stray secret: not echoed.
    m = error_of("GET https://api.example/a\n  sk_live_4eC39HqLyjWDarjtT1zdp7dc\n");
    CHECK(contains(m, "targets.txt:2:"));
    CHECK_FALSE(contains(m, "sk_live"));
    // Nor is the rest of a folded header value.
    m = error_of("GET https://api.example/a\nAuthorization: Bearer\n\tabcdefSecret\n");
    CHECK(m == "targets.txt:3: an indented line that is no header: folded header values are not supported");
}

TEST_CASE("error: a METHOD line without a URL or with more than a URL") {
    CHECK(error_of("GET https://api.example/a\nPOST\n") == "targets.txt:2: POST without a URL: expected 'METHOD URL'");
    CHECK(error_of("POST   \t\n") == "targets.txt:1: POST without a URL: expected 'METHOD URL'");
    const auto m = error_of("\n# c\nGET https://api.example/a HTTP/1.1\n");
    CHECK(contains(m, "targets.txt:3: text after the URL 'https://api.example/a'"));
}

TEST_CASE("error: a URL that is not an absolute http(s) URL") {
    CHECK(contains(error_of("GET /path\n"), "targets.txt:1: bad URL '/path'"));
    CHECK(contains(error_of("GET api.example/x\n"), "targets.txt:1: bad URL"));
    CHECK(contains(error_of("\nGET ftp://files.example/x\n"), "targets.txt:2: bad URL 'ftp://files.example/x'"));
    CHECK(contains(error_of("GET http:///x\n"), "targets.txt:1: bad URL"));
    const auto m = error_of("GET https://user:hunter2@api.example/x?key=abc\n");
    CHECK(contains(m, "targets.txt:1: bad URL 'https://***@api.example/x?***'"));
    CHECK_FALSE(contains(m, "hunter2"));
    CHECK_FALSE(contains(m, "abc"));
    // A URL on its own looks like a header named "https".
    CHECK(error_of("GET https://api.example/a\nhttps://api.example/b\n") ==
          "targets.txt:2: a URL without a method: expected 'METHOD URL'");
}

TEST_CASE("error: a header line before any target, or after a blank line") {
    auto m = error_of("# headers first\nX-Api-Key: secret-value\nGET https://api.example/a\n");
    CHECK(m == "targets.txt:2: a header line before any 'METHOD URL' line");
    m = error_of("GET https://api.example/a\n\nX-Api-Key: secret-value\n");
    CHECK(contains(m, "targets.txt:3: a header line after a blank line"));
    CHECK_FALSE(contains(m, "secret-value"));
}

TEST_CASE("error: a header name that is not a token") {
    auto m = error_of("GET https://api.example/a\nX-Api-Key : secret-value\n");
    CHECK(m == "targets.txt:2: bad header name 'X-Api-Key ' (must be an RFC 9110 token)");
    m = error_of("GET https://api.example/a\nX(Key): secret-value\n");
    CHECK(contains(m, "targets.txt:2: bad header name 'X(Key)'"));
    CHECK_FALSE(contains(m, "secret-value"));
    m = error_of("GET https://api.example/a\n\n# c\nGET https://api.example/b\n: secret-value\n");
    CHECK(contains(m, "targets.txt:5: bad header name ''"));
    CHECK_FALSE(contains(m, "secret-value"));
}

TEST_CASE("error: a header value with a control character, never echoed") {
    using namespace std::string_literals;
    for (const std::string& line : {"X-Api-Key: sec\rret-value"s, "X-Api-Key: sec\0ret-value"s,
                                    "X-Api-Key: sec\x01ret-value"s, "X-Api-Key: sec\x7fret-value"s,
                                    "X-Api-Key: secret-value\r\r"s, "X-Api-Key: secret-value\x0b"s}) {
        CAPTURE(line);
        const auto m = error_of("GET https://api.example/a\nX-Other: 1\n" + line + "\n");
        CHECK(contains(m, "targets.txt:3: bad value for header X-Api-Key"));
        CHECK_FALSE(contains(m, "sec"s + line[14]));
        CHECK_FALSE(contains(m, "ret-value"));
    }
}

TEST_CASE("error: a second body line") {
    fake_files files{{{"a.json", "A"}, {"b.json", "B"}}, {}};
    const auto m = error_of("POST https://api.example/a\n@a.json\n@b.json\n", files);
    CHECK(m == "targets.txt:3: a second body line: a target has one body file");
}

TEST_CASE("error: a header line after the body line") {
    fake_files files{{{"a.json", "A"}}, {}};
    const auto m = error_of("POST https://api.example/a\n@a.json\nX-Api-Key: secret-value\n", files);
    CHECK(m == "targets.txt:3: a header line after the body line: headers come first");
}

TEST_CASE("error: a body line outside a target, or without a path") {
    CHECK(error_of("@a.json\n") == "targets.txt:1: a body line ('@path') before any 'METHOD URL' line");
    CHECK(contains(error_of("POST https://api.example/a\n\n@a.json\n"),
                   "targets.txt:3: a body line ('@path') after a blank line"));
    CHECK(error_of("POST https://api.example/a\n@\n") == "targets.txt:2: '@' without a body file path");
}

TEST_CASE("error: more than max_targets targets") {
    std::string text;
    for (std::size_t i = 0; i < load::max_targets; ++i) text += "GET https://api.example/" + std::to_string(i) + "\n";
    CHECK(parsed(text).size() == load::max_targets);
    text += "X-Last: 1\nGET https://api.example/one-too-many\n";
    CHECK(error_of(text) == "targets.txt:1002: more than 1000 targets");
}

TEST_CASE("error: an unreadable body file names the line and the path") {
    fake_files files;
    const auto m = error_of("GET https://api.example/a\n\nPOST https://api.example/b\n@missing.json\n", files);
    CHECK(contains(m, "targets.txt:4: cannot read the body file 'missing.json'"));
    CHECK(files.asked == std::vector<std::string>{"missing.json"});
}

TEST_CASE("error: body files that add up to more than max_bodies") {
    fake_files files;
    files.files["big.bin"] = std::string(load::max_bodies / 4, 'x');
    std::string text;
    for (int i = 0; i < 4; ++i) text += "POST https://api.example/b\n@big.bin\n"; // exactly the limit
    CHECK(parsed(text, files).size() == 4);
    text += "POST https://api.example/b\n@big.bin\n";
    CHECK(contains(error_of(text, files), "targets.txt:10: the body files add up to more than 32 MiB"));
}

TEST_CASE("error: a byte order mark is refused, not skipped") {
    CHECK(contains(error_of("\xEF\xBB\xBFGET https://api.example/a\n"),
                   "targets.txt:1: the file starts with a UTF-8 byte order mark"));
}

TEST_CASE("load_targets reads the file, and the body files relative to the current directory") {
    temp_dir dir;
    const auto body = dir.write("body.json", "{\"n\":1}\n");
    const auto file = dir.write("targets.txt", "POST https://api.example/a\r\n"
                                               "Content-Type: application/json\r\n"
                                               "@" + body.string() + "\r\n\r\n"
                                               "GET https://api.example/b\n");
    auto r = load::load_targets(file.string());
    if (auto* e = std::get_if<targets_error>(&r)) FAIL_CHECK(e->message);
    REQUIRE(std::holds_alternative<std::vector<target>>(r));
    auto t = std::get<std::vector<target>>(r);
    REQUIRE(t.size() == 2);
    CHECK(t[0].body == "{\"n\":1}\n");
    CHECK(t[0].body_path == body.string());
    CHECK(t[0].headers == headers{{"Content-Type", "application/json"}});
    CHECK(t[1].url == "https://api.example/b");

    // A relative @path: from the current directory, not the targets file's.
    fs::create_directory(dir.path() / "sub");
    const auto relative = dir.write("sub/targets.txt", "POST https://api.example/a\n@body.json\n");
    {
        current_dir here(dir.path());
        r = load::load_targets(relative.string());
        REQUIRE(std::holds_alternative<std::vector<target>>(r));
        CHECK(std::get<std::vector<target>>(r)[0].body == "{\"n\":1}\n");
    }
    {
        current_dir here(dir.path() / "sub");
        r = load::load_targets(relative.string());
        REQUIRE(std::holds_alternative<targets_error>(r));
        CHECK(contains(std::get<targets_error>(r).message, "targets.txt:2: cannot read the body file 'body.json'"));
    }
}

TEST_CASE("load_targets refuses a missing or too big targets file, and a too big body file") {
    temp_dir dir;
    auto r = load::load_targets((dir.path() / "missing.txt").string());
    REQUIRE(std::holds_alternative<targets_error>(r));
    CHECK(contains(std::get<targets_error>(r).message, "cannot read the targets file"));
    CHECK(contains(std::get<targets_error>(r).message, "missing.txt"));

    const auto big = dir.write("big.txt", "GET https://api.example/a\n");
    fs::resize_file(big, load::max_targets_file + 1); // NULs after the first line
    r = load::load_targets(big.string());
    REQUIRE(std::holds_alternative<targets_error>(r));
    CHECK(contains(std::get<targets_error>(r).message, "bigger than 4 MiB"));

    const auto body = dir.write("body.bin", "");
    fs::resize_file(body, load::max_body_file + 1);
    const auto file = dir.write("targets.txt", "POST https://api.example/a\n@" + body.string() + "\n");
    r = load::load_targets(file.string());
    REQUIRE(std::holds_alternative<targets_error>(r));
    CHECK(contains(std::get<targets_error>(r).message, "targets.txt:2: cannot read the body file"));

    fs::resize_file(body, load::max_body_file); // exactly the limit is fine
    r = load::load_targets(file.string());
    REQUIRE(std::holds_alternative<std::vector<target>>(r));
    CHECK(std::get<std::vector<target>>(r)[0].body.size() == load::max_body_file);
}

TEST_CASE("--weights: one per target, in file order") {
    auto t = parsed("GET https://api.example/a\nGET https://api.example/b\nGET https://api.example/c\n");
    CHECK_FALSE(load::apply_weights(t, "5,1,1000").has_value());
    CHECK(t[0].weight == 5);
    CHECK(t[1].weight == 1);
    CHECK(t[2].weight == 1000);
}

TEST_CASE("--weights errors leave the weights as they were") {
    auto t = parsed("GET https://api.example/a\nGET https://api.example/b\nGET https://api.example/c\n");
    const auto error = [&](std::string_view w) {
        auto e = load::apply_weights(t, w);
        REQUIRE_MESSAGE(e.has_value(), w);
        for (const auto& x : t) CHECK(x.weight == 1);
        return e->message;
    };
    CHECK(error("5,1") == "bad --weights: 2 weights for 3 targets (give one per target, in file order)");
    CHECK(error("5,1,1,1") == "bad --weights: 4 weights for 3 targets (give one per target, in file order)");
    CHECK(error("5,0,1") == "bad --weights: weight 2 is '0' (each is a whole number from 1 to 1000)");
    CHECK(error("5,1,1001") == "bad --weights: weight 3 is '1001' (each is a whole number from 1 to 1000)");
    CHECK(error("5,x,1") == "bad --weights: weight 2 is 'x' (each is a whole number from 1 to 1000)");
    CHECK(contains(error("5,-1,1"), "weight 2 is '-1'"));
    CHECK(contains(error("5, 1,1"), "weight 2 is ' 1'"));
    CHECK(contains(error("1.5,1,1"), "weight 1 is '1.5'"));
    CHECK(contains(error("99999999999,1,1"), "weight 1 is '99999999999'"));
    CHECK(error("5,1,1,") == "bad --weights: weight 4 is empty (each is a whole number from 1 to 1000)");
    CHECK(error("") == "bad --weights: weight 1 is empty (each is a whole number from 1 to 1000)");
}

TEST_CASE("--weights: a cycle of turns is at most max_weights long, once divided by the weights' gcd") {
    std::string text;
    for (int i = 0; i < 101; ++i) text += "GET https://api.example/" + std::to_string(i) + '\n';
    auto t = parsed(text);
    std::string all_1000, coprime;
    for (int i = 0; i < 101; ++i) {
        if (i) {
            all_1000 += ',';
            coprime += ',';
        }
        all_1000 += "1000";
        coprime += i == 0 ? "999" : "1000";
    }
    CHECK_FALSE(load::apply_weights(t, all_1000).has_value()); // 101 turns once divided by 1000
    CHECK(t[100].weight == 1000);
    auto e = load::apply_weights(t, coprime);
    REQUIRE(e.has_value());
    CHECK(contains(e->message, "they add up to 100999 turns per cycle"));
}

TEST_CASE("a '# tokenflight-scope:' line gives its target a scope; vegeta reads it as a comment") {
    const auto t = parsed("GET https://api.example/read\n"
                          "# tokenflight-scope: read\n\n"
                          "POST https://api.example/admin\n"
                          "Content-Type: text/plain\n"
                          "# tokenflight-scope:   admin write:all \n"
                          "GET https://api.example/default\n"
                          "# just a comment: scope: none\n");
    REQUIRE(t.size() == 3);
    CHECK(t[0].scope == "read");
    CHECK(t[1].scope == "admin write:all"); // trimmed
    CHECK(t[1].headers.size() == 1);
    CHECK_FALSE(t[2].scope.has_value());
}

TEST_CASE("error: a scope line outside a target, twice in one, or with a bad scope") {
    CHECK(contains(error_of("# tokenflight-scope: read\nGET https://api.example/a\n"),
                   "targets.txt:1: a scope line ('# tokenflight-scope:') before any 'METHOD URL' line"));
    CHECK(contains(error_of("GET https://api.example/a\n# tokenflight-scope: a\n# tokenflight-scope: b\n"),
                   "targets.txt:3: a second scope line"));
    for (const char* bad : {"", "a  b", "a \"b\"", "back\\slash", "tab\there", "ctl\x01"}) {
        INFO(bad);
        CHECK(contains(error_of("GET https://api.example/a\n# tokenflight-scope: " + std::string(bad) + "\n"),
                       "targets.txt:2: bad scope"));
    }
}
