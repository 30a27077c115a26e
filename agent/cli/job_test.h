/* `sluice job ...`: commands about jobs; so far `sluice job test`, which runs
 * one job over a file of JSON lines without Kafka. */
#ifndef SL_JOB_TEST_H
#define SL_JOB_TEST_H

/* argv[0] is "job".  Returns the exit code. */
int sl_job_cli_main(int argc, char **argv);

#endif
