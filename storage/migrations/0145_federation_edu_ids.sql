-- Queue ids of federation_edu_queue, shared by every process (docs/workers.md): a process that
-- does not send federation (the main process beside a federation sender worker) queues EDUs
-- too, so the ids cannot come from one process's memory. One row (id = 1), bumped in the
-- transaction that inserts the EDU; its row lock orders concurrent writers.
CREATE TABLE federation_edu_queue_ids (
    id INTEGER NOT NULL PRIMARY KEY,
    last_id BIGINT NOT NULL
);
INSERT INTO federation_edu_queue_ids (id, last_id)
    SELECT 1, COALESCE(MAX(queue_id), 0) FROM federation_edu_queue;
