-- Several nodes: each node's cameras' live state, written by the node that
-- runs them every few seconds, so every node's camera list shows the whole
-- site (design/cluster.md). Never edit this file once it has landed.
CREATE TABLE camera_states (
    camera_id TEXT   PRIMARY KEY,
    -- The node that wrote it (the camera's runner then).
    node_id   TEXT   NOT NULL,
    -- CameraState and HealthReason as the API names them; the detail for
    -- people (never credentials).
    state     TEXT   NOT NULL,
    reason    TEXT,
    detail    TEXT,
    -- When the camera entered the state (the runner's clock), and when the
    -- row was written (the database's clock), ms since the Unix epoch.
    since     BIGINT NOT NULL,
    at        BIGINT NOT NULL
);
