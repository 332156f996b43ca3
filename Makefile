# Thin wrappers over `cargo xtask`, kept for the old target names. Extra flags: make <target> ARGS="...".

.DEFAULT_GOAL := help
.PHONY: help create-wheelhouse pack-wheelhouse verify-wheelhouse build-offline build-online

help:
	@echo "Targets (each runs cargo xtask <target> \$$(ARGS)):"
	@echo "  create-wheelhouse  download every wheel for every target into wheelhouse/"
	@echo "  pack-wheelhouse    pack the wheelhouse into a reproducible wheelhouse.tgz"
	@echo "  verify-wheelhouse  check every byte against the manifest, and installability offline"
	@echo "  build-offline      build the images from the wheelhouse, with no network"
	@echo "  build-online       build the images from the package index"
	@echo "  help               this list"
	
create-wheelhouse:
	cargo xtask create-wheelhouse $(ARGS)

pack-wheelhouse:
	cargo xtask pack-wheelhouse $(ARGS)

verify-wheelhouse:
	cargo xtask verify-wheelhouse $(ARGS)

build-offline:
	cargo xtask build-offline $(ARGS)

build-online:
	cargo xtask build-online $(ARGS)
