-- Several nodes on one database (design/cluster.md): the nodes, and which
-- node runs which camera. Never edit this file once it has landed.

-- One row per node that ever joined; a node is alive while its heartbeat is
-- younger than a lease.
CREATE TABLE cluster_nodes (
    -- `[cluster] node_id`.
    node_id      TEXT   PRIMARY KEY,
    -- When the node (last) started and last beat: ms since the Unix epoch,
    -- by the database's clock.
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    -- `[cluster] max_cameras` (0: no cap).
    max_cameras  BIGINT NOT NULL,
    -- Cameras the node ran at its last beat, and its process CPU use then
    -- (per cent of one core).
    cameras      BIGINT NOT NULL DEFAULT 0,
    cpu_percent  DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- 1 while the node hands its cameras over (SIGTERM, `xueliang drain`).
    draining     BIGINT NOT NULL DEFAULT 0
);

-- Who runs a camera, until when. A lease past `expires_at` may be taken by
-- any node; its holder stopped the camera before that moment.
CREATE TABLE camera_leases (
    camera_id   TEXT   PRIMARY KEY,
    node_id     TEXT   NOT NULL,
    -- ms since the Unix epoch, by the database's clock.
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE INDEX camera_leases_by_node ON camera_leases (node_id);
