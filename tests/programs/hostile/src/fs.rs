//! Filesystem attacks: reading outside the grants, and changing a read-only
//! grant. Each tries several routes, through the standard library (as a real
//! provider would) and through WASI directly (for what the standard library
//! refuses to express, such as truncating on a read-only open).

use crate::report::Report;
use wasip2::clocks::wall_clock::Datetime;
use wasip2::filesystem::types::{Descriptor, DescriptorFlags, NewTimestamp, OpenFlags, PathFlags};

/// The preopened directory the tests grant at `guest` (`/data` or `/ro`).
pub(crate) fn preopen(guest: &str) -> Descriptor {
    wasip2::filesystem::preopens::get_directories()
        .into_iter()
        .find(|(_, path)| path == guest)
        .map(|(d, _)| d)
        .unwrap_or_else(|| panic!("hostile provider: the test must grant {guest}"))
}

/// Reading `path` must fail.
fn read(r: &mut Report, path: &str) {
    if let Some(bytes) = r.must_fail(&format!("read {path}"), std::fs::read(path)) {
        r.escaped(format!(
            "read {path}: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        ));
    }
}

/// Listing `path` must fail.
fn list(r: &mut Report, path: &str) {
    let names = std::fs::read_dir(path).map(|d| {
        d.filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(",")
    });
    if let Some(names) = r.must_fail(&format!("list {path}"), names) {
        r.escaped(format!("list {path}: [{names}]"));
    }
}

/// Writing `path` must fail.
fn write(r: &mut Report, path: &str) {
    r.must_fail(
        &format!("write {path}"),
        std::fs::write(path, b"written by the hostile provider"),
    );
}

/// Opening `path` under the preopen `dir` (named `name`) with WASI's
/// `open-at` must fail.
fn open_at(
    r: &mut Report,
    dir: &Descriptor,
    name: &str,
    path: &str,
    oflags: OpenFlags,
    flags: DescriptorFlags,
) {
    let what = format!("open-at {name} {path:?} {oflags:?} {flags:?}");
    let opened = dir.open_at(PathFlags::SYMLINK_FOLLOW, path, oflags, flags);
    r.must_fail(&what, opened);
}

/// The host's password file, by the obvious paths.
pub fn passwd() -> String {
    let mut r = Report::new();
    for p in [
        "/etc/passwd",
        "/../etc/passwd",
        "//etc/passwd",
        "etc/passwd",
        "../etc/passwd",
    ] {
        read(&mut r, p);
    }
    r.finish()
}

/// `..` out of a granted directory, towards `/etc` and towards the other
/// provider's directory (a sibling of `/data` on the host).
pub fn dotdot(other: &str) -> String {
    let mut r = Report::new();
    let _ = std::fs::create_dir_all("/data/sub");
    read(&mut r, "/data/../../etc/passwd");
    list(&mut r, "/data/sub/../../..");
    list(&mut r, "/data/..");
    read(&mut r, "/data/../other/secret.txt");
    read(&mut r, "/ro/../data/../../etc/passwd");
    let data = preopen("/data");
    let none = OpenFlags::empty();
    let rd = DescriptorFlags::READ;
    open_at(&mut r, &data, "/data", "..", OpenFlags::DIRECTORY, rd);
    open_at(&mut r, &data, "/data", "../other/secret.txt", none, rd);
    open_at(
        &mut r,
        &data,
        "/data",
        "sub/../../other/secret.txt",
        none,
        rd,
    );
    open_at(
        &mut r,
        &data,
        "/data",
        "../../../../../../etc/passwd",
        none,
        rd,
    );
    // Written through `..`: must not land next to the grant.
    r.must_fail(
        "create /data/../pwned.txt",
        data.open_at(
            PathFlags::empty(),
            "../pwned.txt",
            OpenFlags::CREATE,
            DescriptorFlags::WRITE,
        ),
    );
    write(&mut r, &format!("/data/../{}/pwned.txt", leaf(other)));
    r.finish()
}

/// The last component of a host path.
fn leaf(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Absolute host paths, including the other provider's directory.
pub fn absolute(other: &str) -> String {
    let mut r = Report::new();
    read(&mut r, "/etc/hostname");
    read(&mut r, "/proc/self/environ");
    read(&mut r, "/proc/self/maps");
    list(&mut r, "/");
    list(&mut r, "/tmp");
    read(&mut r, &format!("{other}/secret.txt"));
    list(&mut r, other);
    write(&mut r, &format!("{other}/pwned.txt"));
    let data = preopen("/data");
    let rd = DescriptorFlags::READ;
    open_at(
        &mut r,
        &data,
        "/data",
        "/etc/passwd",
        OpenFlags::empty(),
        rd,
    );
    let secret = format!("{other}/secret.txt");
    open_at(&mut r, &data, "/data", &secret, OpenFlags::empty(), rd);
    r.finish()
}

/// Symlinks the provider creates inside its read-write grant, pointing out
/// of it (to `/etc`, up with `..`, to the other provider's directory by
/// absolute and by relative path, and through a chain of two links), then
/// reads and writes through them. Creating a link is not itself an escape
/// (its target is just text); following it must fail.
pub fn symlink_out(other: &str) -> String {
    let mut r = Report::new();
    let data = preopen("/data");
    let _ = std::fs::create_dir_all("/data/sub");
    let rel_other = format!("../{}", leaf(other));
    let links: [(&str, &str); 6] = [
        ("/etc", "to-etc"),
        ("../..", "to-up"),
        (other, "to-other-abs"),
        (&rel_other, "to-other-rel"),
        ("../../..", "sub/to-up"),
        ("to-other-rel", "to-chain"),
    ];
    let mut created = Vec::new();
    for (target, name) in links {
        let _ = data.unlink_file_at(name);
        match data.symlink_at(target, name) {
            Ok(()) => created.push(format!("{name}->{target}")),
            Err(e) => created.push(format!("{name}->{target} not created ({e})")),
        }
    }
    read(&mut r, "/data/to-etc/passwd");
    list(&mut r, "/data/to-etc");
    list(&mut r, "/data/to-up");
    list(&mut r, "/data/sub/to-up");
    read(&mut r, "/data/to-other-abs/secret.txt");
    read(&mut r, "/data/to-other-rel/secret.txt");
    read(&mut r, "/data/to-chain/secret.txt");
    write(&mut r, "/data/to-other-rel/pwned.txt");
    write(&mut r, "/data/to-chain/pwned.txt");
    let rd = DescriptorFlags::READ;
    let none = OpenFlags::empty();
    open_at(&mut r, &data, "/data", "to-etc/passwd", none, rd);
    open_at(&mut r, &data, "/data", "to-other-rel/secret.txt", none, rd);
    open_at(&mut r, &data, "/data", "to-up", OpenFlags::DIRECTORY, rd);
    let out = r.finish();
    format!("{out} [links: {}]", created.join(", "))
}

/// Symlinks the host planted in the grants (the tests create
/// `/data/host-up -> ../<other>`, `/ro/host-etc -> /etc` and
/// `/ro/host-abs -> <other>`): following them must fail too.
pub fn symlink_planted() -> String {
    let mut r = Report::new();
    read(&mut r, "/data/host-up/secret.txt");
    list(&mut r, "/data/host-up");
    read(&mut r, "/ro/host-etc/passwd");
    list(&mut r, "/ro/host-etc");
    read(&mut r, "/ro/host-abs/secret.txt");
    write(&mut r, "/data/host-up/pwned.txt");
    r.finish()
}

/// Writing to a file of the read-only grant.
pub fn ro_write() -> String {
    let mut r = Report::new();
    let opts = |append: bool| {
        std::fs::OpenOptions::new()
            .write(!append)
            .append(append)
            .open("/ro/file.txt")
    };
    r.must_fail("open /ro/file.txt for writing", opts(false));
    r.must_fail("open /ro/file.txt for appending", opts(true));
    let ro = preopen("/ro");
    let none = OpenFlags::empty();
    open_at(&mut r, &ro, "/ro", "file.txt", none, DescriptorFlags::WRITE);
    let rw = DescriptorFlags::READ | DescriptorFlags::WRITE;
    open_at(&mut r, &ro, "/ro", "file.txt", none, rw);
    // Opened for reading (allowed), then written through the descriptor.
    let file = ro
        .open_at(PathFlags::empty(), "file.txt", none, DescriptorFlags::READ)
        .expect("reading a read-only grant is allowed");
    r.must_fail("write on a read-only descriptor", file.write(b"pwned", 0));
    if let Some(stream) = r.must_fail(
        "write-via-stream on a read-only descriptor",
        file.write_via_stream(0),
    ) {
        r.must_fail("stream write", stream.blocking_write_and_flush(b"pwned"));
    }
    r.must_fail(
        "append-via-stream on a read-only descriptor",
        file.append_via_stream(),
    );
    r.finish()
}

/// Creating files and links in the read-only grant.
pub fn ro_create() -> String {
    let mut r = Report::new();
    r.must_fail(
        "create_new /ro/new.txt",
        std::fs::File::create_new("/ro/new.txt"),
    );
    let ro = preopen("/ro");
    let rd = DescriptorFlags::READ;
    // Create with read access only: `O_CREAT|O_RDONLY` still creates on POSIX.
    open_at(&mut r, &ro, "/ro", "new.txt", OpenFlags::CREATE, rd);
    let excl = OpenFlags::CREATE | OpenFlags::EXCLUSIVE;
    open_at(&mut r, &ro, "/ro", "new2.txt", excl, rd);
    r.must_fail(
        "symlink-at /ro/new-link",
        ro.symlink_at("file.txt", "new-link"),
    );
    r.finish()
}

/// Truncating a file of the read-only grant.
pub fn ro_truncate() -> String {
    let mut r = Report::new();
    let ro = preopen("/ro");
    // `O_TRUNC|O_RDONLY`: Linux truncates the file even though it is opened
    // for reading only, so the host must refuse this before the OS sees it.
    open_at(
        &mut r,
        &ro,
        "/ro",
        "file.txt",
        OpenFlags::TRUNCATE,
        DescriptorFlags::READ,
    );
    r.must_fail(
        "File::create /ro/file.txt",
        std::fs::File::create("/ro/file.txt"),
    );
    let trunc = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open("/ro/file.txt");
    r.must_fail("open /ro/file.txt write+truncate", trunc);
    let file = ro
        .open_at(
            PathFlags::empty(),
            "file.txt",
            OpenFlags::empty(),
            DescriptorFlags::READ,
        )
        .expect("reading a read-only grant is allowed");
    r.must_fail("set-size 0 on a read-only descriptor", file.set_size(0));
    r.finish()
}

/// Renaming in, out of and onto the read-only grant.
pub fn ro_rename() -> String {
    let mut r = Report::new();
    let _ = std::fs::write("/data/decoy.txt", b"decoy");
    let rename = |from: &str, to: &str| std::fs::rename(from, to);
    r.must_fail(
        "rename /ro/file.txt -> /ro/moved.txt",
        rename("/ro/file.txt", "/ro/moved.txt"),
    );
    r.must_fail(
        "rename /ro/file.txt -> /data/stolen.txt",
        rename("/ro/file.txt", "/data/stolen.txt"),
    );
    r.must_fail(
        "rename /data/decoy.txt -> /ro/file.txt (replace)",
        rename("/data/decoy.txt", "/ro/file.txt"),
    );
    r.must_fail(
        "rename /ro/empty -> /ro/moved-dir",
        rename("/ro/empty", "/ro/moved-dir"),
    );
    r.finish()
}

/// Hard links from, into and within the read-only grant. A link from it into
/// the read-write grant would make the read-only file writable.
pub fn ro_link() -> String {
    let mut r = Report::new();
    let _ = std::fs::write("/data/decoy.txt", b"decoy");
    let link = |from: &str, to: &str| std::fs::hard_link(from, to);
    r.must_fail(
        "link /ro/file.txt -> /ro/link.txt",
        link("/ro/file.txt", "/ro/link.txt"),
    );
    if r.must_fail(
        "link /ro/file.txt -> /data/link.txt",
        link("/ro/file.txt", "/data/link.txt"),
    )
    .is_some()
    {
        let _ = std::fs::write("/data/link.txt", b"pwned through a hard link");
    }
    r.must_fail(
        "link /data/decoy.txt -> /ro/new-link.txt",
        link("/data/decoy.txt", "/ro/new-link.txt"),
    );
    r.finish()
}

/// Removing files and directories of the read-only grant.
pub fn ro_remove() -> String {
    let mut r = Report::new();
    r.must_fail(
        "remove_file /ro/file.txt",
        std::fs::remove_file("/ro/file.txt"),
    );
    r.must_fail("remove_dir /ro/empty", std::fs::remove_dir("/ro/empty"));
    r.must_fail(
        "remove_dir_all /ro/empty",
        std::fs::remove_dir_all("/ro/empty"),
    );
    let ro = preopen("/ro");
    r.must_fail("unlink-file-at /ro file.txt", ro.unlink_file_at("file.txt"));
    r.must_fail(
        "remove-directory-at /ro empty",
        ro.remove_directory_at("empty"),
    );
    r.finish()
}

/// Changing timestamps in the read-only grant.
pub fn ro_set_times() -> String {
    let mut r = Report::new();
    let epoch = || {
        NewTimestamp::Timestamp(Datetime {
            seconds: 0,
            nanoseconds: 0,
        })
    };
    let ro = preopen("/ro");
    r.must_fail(
        "set-times-at /ro file.txt",
        ro.set_times_at(PathFlags::empty(), "file.txt", epoch(), epoch()),
    );
    r.must_fail(
        "set-times-at /ro empty",
        ro.set_times_at(PathFlags::empty(), "empty", epoch(), epoch()),
    );
    r.must_fail(
        "set-times on the /ro directory",
        ro.set_times(epoch(), epoch()),
    );
    let file = ro
        .open_at(
            PathFlags::empty(),
            "file.txt",
            OpenFlags::empty(),
            DescriptorFlags::READ,
        )
        .expect("reading a read-only grant is allowed");
    r.must_fail(
        "set-times on a read-only descriptor",
        file.set_times(epoch(), NewTimestamp::Now),
    );
    if let Ok(f) = std::fs::File::open("/ro/file.txt") {
        r.must_fail(
            "File::set_modified /ro/file.txt",
            f.set_modified(std::time::UNIX_EPOCH),
        );
    }
    r.finish()
}

/// Creating directories in the read-only grant.
pub fn ro_mkdir() -> String {
    let mut r = Report::new();
    r.must_fail("create_dir /ro/newdir", std::fs::create_dir("/ro/newdir"));
    r.must_fail(
        "create_dir_all /ro/empty/deeper",
        std::fs::create_dir_all("/ro/empty/deeper"),
    );
    let ro = preopen("/ro");
    r.must_fail(
        "create-directory-at /ro newdir2",
        ro.create_directory_at("newdir2"),
    );
    r.finish()
}

/// A control: what the grants do allow (reading `/ro`, writing `/data`,
/// following a link that stays inside `/data`). `ok: …` with the contents.
pub fn rw_ok() -> String {
    let attempt = || -> std::io::Result<String> {
        let ro = std::fs::read_to_string("/ro/file.txt")?;
        std::fs::write("/data/ok.txt", b"written by the hostile provider")?;
        let data = std::fs::read_to_string("/data/ok.txt")?;
        let link = preopen("/data");
        let _ = link.unlink_file_at("inside");
        link.symlink_at("ok.txt", "inside")
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let through = std::fs::read_to_string("/data/inside")?;
        Ok(format!("ok: ro={ro}; data={data}; link={through}"))
    };
    attempt().unwrap_or_else(|e| format!("failed: {e}"))
}

/// The names in `/data`, sorted: `listed: a,b`.
pub fn list_data() -> String {
    match std::fs::read_dir("/data") {
        Ok(d) => {
            let mut names: Vec<String> = d
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            format!("listed: {}", names.join(","))
        }
        Err(e) => format!("failed: {e}"),
    }
}

/// Writes `/data/marker.txt`.
pub fn write_marker() -> String {
    match std::fs::write("/data/marker.txt", b"marker") {
        Ok(()) => "ok: wrote /data/marker.txt".to_string(),
        Err(e) => format!("failed: {e}"),
    }
}
