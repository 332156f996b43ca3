# The image that runs `wheelgap serve` in a cluster (docs/kubernetes.md, "An index for the
# fleet"): the tool's binary on a small Debian base, as a user with no privileges. The build
# context is a directory holding the binary, built for the base's glibc (bookworm: 2.36) or older:
#   cargo build --release --bin wheelgap
#   mkdir -p image && cp target/release/wheelgap image/
#   podman build --file deploy/wheelgap.Dockerfile --tag REGISTRY/wheelgap:1 image
# gpgv (in every Debian base) checks GnuPG signatures; add openssh-client for SSH ones.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
COPY wheelgap /usr/local/bin/wheelgap
USER 65534:65534
ENTRYPOINT ["wheelgap"]
CMD ["serve", "--help"]
