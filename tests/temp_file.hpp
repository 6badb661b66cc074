// A file under the temporary directory with a name no other test run can share, removed on
// destruction: tests of different builds and runs may execute at the same time on one machine.
#ifndef TOKENFLIGHT_TESTS_TEMP_FILE_HPP
#define TOKENFLIGHT_TESTS_TEMP_FILE_HPP

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>

#include <stdlib.h>
#include <unistd.h>

namespace test {

class temp_file {
public:
    /// Creates the file (mkstemp: exclusive, mode 0600) with `content`.
    explicit temp_file(std::string_view content = {}, std::string_view stem = "tokenflight-test") {
        std::string pattern = (std::filesystem::temp_directory_path() / (std::string(stem) + "-XXXXXX")).string();
        const int fd = ::mkstemp(pattern.data());
        if (fd < 0) throw std::system_error(errno, std::generic_category(), "mkstemp");
        std::size_t done = 0;
        while (done < content.size()) {
            const auto n = ::write(fd, content.data() + done, content.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                const int e = errno;
                ::close(fd);
                ::unlink(pattern.c_str());
                throw std::system_error(e, std::generic_category(), "write");
            }
            done += static_cast<std::size_t>(n);
        }
        ::close(fd);
        path_ = std::move(pattern);
    }
    ~temp_file() { remove(); }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;

    const std::string& path() const noexcept { return path_; }
    std::string read() const {
        std::ifstream f(path_, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }
    /// Removes the file now (a test of a missing file); the name stays reserved for nobody.
    void remove() noexcept {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }

private:
    std::string path_;
};

} // namespace test

#endif
