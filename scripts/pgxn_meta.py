#!/usr/bin/env python3
"""Validate a PGXN META.json against the PGXN Meta Spec 1.0.0, and a
distribution zip made by `make dist`.

    scripts/pgxn_meta.py META.json            the file, plus the checks below
    scripts/pgxn_meta.py projections-0.3.0.zip  the archive and its META.json

The spec's rules are those of its JSON schemas (schema/v1 of the PGXN meta
spec: required keys, SemVer versions, terms, licenses, prereq phases and
relationships, version ranges, provides, resources, no_index, tags, custom
x_ keys).  On top of them, for this project:

  * the distribution's version and the version of the extension it provides
    are projections.control's default_version;
  * every file and docfile that provides names exists (in the directory of
    META.json, or in the archive);
  * an archive holds exactly one top-level directory, NAME-VERSION/, with
    META.json and the control file in it.

Python 3 standard library only.  Exits 1 and lists every error when invalid.
"""

import json
import os
import re
import sys
import unicodedata
import zipfile

SEMVER = (r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
          r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
          r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
          r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?")
SEMVER_RE = re.compile("^" + SEMVER + "$", re.ASCII)
RANGE_ITEM = r"(?:(?:[=!]=|[<>]=?)\s*)?" + SEMVER
RANGE_RE = re.compile(r"^(?:" + RANGE_ITEM + r"|0)(?:,\s*" + RANGE_ITEM + r")*$", re.ASCII)
META_SPEC_VERSION_RE = re.compile(r"^1\.0\.\d+$", re.ASCII)
URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CUSTOM_RE = re.compile(r"^[xX]_.")

LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd",
    "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1",
    "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5",
    "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source",
    "restricted", "unrestricted", "unknown",
}
DIST_KEYS = {
    "name", "version", "abstract", "maintainer", "license", "provides",
    "meta-spec", "description", "generated_by", "tags", "no_index", "prereqs",
    "release_status", "resources",
}
REQUIRED = ["name", "version", "abstract", "maintainer", "license", "provides", "meta-spec"]
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}


class Checker:
    def __init__(self):
        self.errors = []

    def err(self, path, msg):
        self.errors.append("%s: %s" % (path or "(top)", msg))

    # -- building blocks -------------------------------------------------

    def obj(self, path, value, allowed=None, required=(), min_props=0):
        if not isinstance(value, dict):
            self.err(path, "must be an object")
            return False
        for key in required:
            if key not in value:
                self.err(path, "missing required key %r" % key)
        if allowed is not None:
            for key in value:
                if key not in allowed and not CUSTOM_RE.match(key):
                    self.err(path, "unknown key %r (custom keys start with x_)" % key)
        if len(value) < min_props:
            self.err(path, "must have at least %d key(s)" % min_props)
        return True

    def string(self, path, value, min_len=1):
        if not isinstance(value, str):
            self.err(path, "must be a string")
            return False
        if len(value) < min_len:
            self.err(path, "must be at least %d character(s) long" % min_len)
            return False
        return True

    def term(self, path, value):
        if not self.string(path, value, 2):
            return
        for ch in value:
            if ch in "/\\" or ch.isspace() or unicodedata.category(ch) == "Cc":
                self.err(path, "%r is not a term (no slash, backslash, space or control character)" % value)
                return

    def version(self, path, value):
        if not isinstance(value, str) or not SEMVER_RE.match(value):
            self.err(path, "%r is not a semantic version (MAJOR.MINOR.PATCH)" % (value,))

    def version_range(self, path, value):
        if value == 0 and not isinstance(value, bool):
            return
        if not isinstance(value, str) or not RANGE_RE.match(value):
            self.err(path, "%r is not a version range" % (value,))

    def uri(self, path, value):
        if self.string(path, value) and not URI_RE.match(value):
            self.err(path, "%r is not a URI" % value)

    def rel_path(self, path, value):
        if not self.string(path, value):
            return
        if value.startswith("/") or "\\" in value or ".." in value.split("/"):
            self.err(path, "%r must be a relative path in unix form" % value)

    def unique_strings(self, path, value, check):
        if not isinstance(value, list) or not value:
            self.err(path, "must be a non-empty array")
            return
        if len(set(map(json.dumps, value))) != len(value):
            self.err(path, "items must be unique")
        for i, item in enumerate(value):
            check("%s[%d]" % (path, i), item)

    # -- the spec's fields -------------------------------------------------

    def maintainer(self, path, value):
        if isinstance(value, list):
            self.unique_strings(path, value, self.string)
        else:
            self.string(path, value)

    def license(self, path, value):
        def shortcut(p, v):
            if v not in LICENSES:
                self.err(p, "%r is not a license shortcut of the spec" % (v,))
        if isinstance(value, str):
            shortcut(path, value)
        elif isinstance(value, list):
            self.unique_strings(path, value, shortcut)
        elif isinstance(value, dict):
            if not value:
                self.err(path, "must name at least one license")
            for name, url in value.items():
                self.uri("%s.%s" % (path, name), url)
        else:
            self.err(path, "must be a license shortcut, an array of them, or an object of name: URI")

    def provides(self, path, value):
        if not self.obj(path, value, min_props=1):
            return
        for name, ext in value.items():
            p = "%s.%s" % (path, name)
            self.term(p + " (name)", name)
            if not self.obj(p, ext, {"file", "version", "abstract", "docfile"}, ("file", "version")):
                continue
            if "file" in ext:
                self.rel_path(p + ".file", ext["file"])
            if "docfile" in ext:
                self.rel_path(p + ".docfile", ext["docfile"])
            if "version" in ext:
                self.version(p + ".version", ext["version"])
            if "abstract" in ext:
                self.string(p + ".abstract", ext["abstract"])

    def meta_spec(self, path, value):
        if not self.obj(path, value, {"version", "url"}, ("version",)):
            return
        v = value.get("version")
        if not isinstance(v, str) or not META_SPEC_VERSION_RE.match(v):
            self.err(path + ".version", "%r: this validator knows the 1.0.x spec only" % (v,))
        if "url" in value and value["url"] != "https://pgxn.org/meta/spec.txt":
            self.err(path + ".url", "must be https://pgxn.org/meta/spec.txt")

    def tags(self, path, value):
        def tag(p, v):
            if not self.string(p, v, 2):
                return
            if len(v) > 255:
                self.err(p, "longer than 255 characters")
            if any(ch in "/\\" or unicodedata.category(ch) == "Cc" for ch in v):
                self.err(p, "%r: no slash, backslash or control character" % v)
        self.unique_strings(path, value, tag)

    def no_index(self, path, value):
        if not self.obj(path, value, {"file", "directory"}):
            return
        if "file" not in value and "directory" not in value:
            self.err(path, "needs file or directory")
        for key in ("file", "directory"):
            if key in value:
                v = value[key]
                if isinstance(v, list):
                    self.unique_strings("%s.%s" % (path, key), v, self.string)
                else:
                    self.string("%s.%s" % (path, key), v)

    def prereqs(self, path, value):
        if not self.obj(path, value, PHASES):
            return
        if not any(phase in value for phase in PHASES):
            self.err(path, "needs at least one phase (%s)" % ", ".join(sorted(PHASES)))
        for phase in PHASES & set(value):
            p = "%s.%s" % (path, phase)
            if not self.obj(p, value[phase], RELATIONS):
                continue
            if not any(rel in value[phase] for rel in RELATIONS):
                self.err(p, "needs at least one of %s" % ", ".join(sorted(RELATIONS)))
            for rel in RELATIONS & set(value[phase]):
                q = "%s.%s" % (p, rel)
                if not self.obj(q, value[phase][rel], min_props=1):
                    continue
                for name, rng in value[phase][rel].items():
                    self.term("%s (name %r)" % (q, name), name)
                    self.version_range("%s.%s" % (q, name), rng)

    def resources(self, path, value):
        if not self.obj(path, value, {"homepage", "bugtracker", "repository"}):
            return
        if not {"homepage", "bugtracker", "repository"} & set(value):
            self.err(path, "needs homepage, bugtracker or repository")
        if "homepage" in value:
            self.uri(path + ".homepage", value["homepage"])
        if "bugtracker" in value:
            p, bt = path + ".bugtracker", value["bugtracker"]
            if self.obj(p, bt, {"web", "mailto"}):
                if "web" not in bt and "mailto" not in bt:
                    self.err(p, "needs web or mailto")
                if "web" in bt:
                    self.uri(p + ".web", bt["web"])
                if "mailto" in bt and (not isinstance(bt["mailto"], str) or not EMAIL_RE.match(bt["mailto"])):
                    self.err(p + ".mailto", "not an e-mail address")
        if "repository" in value:
            p, repo = path + ".repository", value["repository"]
            if self.obj(p, repo, {"url", "web", "type"}):
                if "web" not in repo and not ("url" in repo and "type" in repo):
                    self.err(p, "needs web, or url and type")
                for key in ("url", "web"):
                    if key in repo:
                        self.uri("%s.%s" % (p, key), repo[key])
                if "type" in repo and (not isinstance(repo["type"], str) or not re.match(r"^[a-z]+$", repo["type"])):
                    self.err(p + ".type", "must be lower-case letters")

    def distribution(self, meta):
        if not self.obj("", meta, DIST_KEYS, REQUIRED):
            return
        checks = {
            "name": self.term, "version": self.version, "abstract": self.string,
            "description": self.string, "generated_by": self.string,
            "maintainer": self.maintainer, "license": self.license,
            "provides": self.provides, "meta-spec": self.meta_spec,
            "tags": self.tags, "no_index": self.no_index, "prereqs": self.prereqs,
            "resources": self.resources,
        }
        for key, check in checks.items():
            if key in meta:
                check(key, meta[key])
        if "release_status" in meta and meta["release_status"] not in ("stable", "testing", "unstable"):
            self.err("release_status", "must be stable, testing or unstable")


def control_default_version(text):
    m = re.search(r"^\s*default_version\s*=\s*'([^']*)'", text, re.M)
    return m.group(1) if m else None


def check_project(c, meta, exists, read):
    """The project's own rules: versions agree with the control file, the
    files named exist.  exists(path) and read(path) look in the tree or the
    archive."""
    if not isinstance(meta, dict) or not isinstance(meta.get("provides"), dict):
        return
    for ext, info in meta["provides"].items():
        if not isinstance(info, dict):
            continue
        for key in ("file", "docfile"):
            if isinstance(info.get(key), str) and not exists(info[key]):
                c.err("provides.%s.%s" % (ext, key), "%r does not exist" % info[key])
        control = ext + ".control"
        if not exists(control):
            c.err("provides.%s" % ext, "no %s beside META.json" % control)
            continue
        default = control_default_version(read(control))
        if default is None:
            c.err(control, "has no default_version")
            continue
        if info.get("version") != default:
            c.err("provides.%s.version" % ext,
                  "%r, but %s says default_version = '%s'" % (info.get("version"), control, default))
        if meta.get("name") == ext and meta.get("version") != default:
            c.err("version", "%r, but %s says default_version = '%s'" % (meta.get("version"), control, default))


def check_file(path):
    c = Checker()
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        return ["%s: %s" % (path, e)]
    c.distribution(meta)

    def read(p):
        with open(os.path.join(base, p), encoding="utf-8") as f:
            return f.read()
    check_project(c, meta, lambda p: os.path.isfile(os.path.join(base, p)), read)
    return c.errors


def check_zip(path):
    c = Checker()
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        return ["%s: %s" % (path, e)]
    names = z.namelist()
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) != 1 or not all("/" in n for n in names):
        return ["%s: must hold exactly one top-level directory, not %s" % (path, sorted(tops))]
    top = tops.pop()
    if top + "/META.json" not in names:
        return ["%s: no %s/META.json" % (path, top)]
    try:
        meta = json.loads(z.read(top + "/META.json").decode("utf-8"))
    except ValueError as e:
        return ["%s: %s/META.json: %s" % (path, top, e)]
    c.distribution(meta)
    if isinstance(meta, dict):
        want = "%s-%s" % (meta.get("name"), meta.get("version"))
        if top != want:
            c.err("(archive)", "top-level directory %r, META.json says %r" % (top, want))
        stem = os.path.basename(path)
        if stem.endswith(".zip") and stem[:-4] != want:
            c.err("(archive)", "file name %r, META.json says %r" % (stem, want + ".zip"))
    files = set(names)
    check_project(c, meta, lambda p: top + "/" + p in files,
                  lambda p: z.read(top + "/" + p).decode("utf-8"))
    return c.errors


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 2
    path = argv[1]
    errors = check_zip(path) if path.endswith(".zip") else check_file(path)
    if errors:
        print("%s is invalid:" % path)
        for e in errors:
            print("  " + e)
        return 1
    print("%s is OK (PGXN Meta Spec 1.0.0)" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
