#version 300 es
{# GLSL ES 3.00, the dialect of WebGL2 and TF.js.  On Mesa llvmpipe, only highp for floats,
   ints AND samplers keeps float32 exact: a lower-precision sampler rounds every fetched
   value to about 16 bits. #}
precision highp float;
precision highp int;
precision highp sampler2D;
