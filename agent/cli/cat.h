/* `sluice cat`: the forward-protocol client of the command line. */
#ifndef SL_CAT_H
#define SL_CAT_H

/* argv[0] is "cat".  Returns the exit code. */
int sl_cat_main(int argc, char **argv);

#endif
