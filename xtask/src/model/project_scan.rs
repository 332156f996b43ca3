//! What a project holds that decides its settings: requirements files, the compose file, Dockerfiles and their bases (placeholder: filled by the init work).
