/* SPDX-License-Identifier: MIT */
/* placeholder so the module library has a translation unit until its sources land */
typedef int stack__placeholder_unit;
