# lumpy_add_plugin(<target> SOURCES <files...> [OUTPUT_DIRECTORY <dir>] [NO_INSTALL])
#
# Builds one lumpy plugin: a MODULE library named lumpy_<target>.so with hidden
# visibility, linked against the SDK library (Lumpy::sdk, liblumpy_sdk). The in-tree plugins use
# exactly this function, as an out-of-tree author does after
# find_package(Lumpy). The loader picks up files named lumpy_*.so.
function(lumpy_add_plugin target)
  cmake_parse_arguments(ARG "NO_INSTALL" "OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "lumpy_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE Lumpy::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX "lumpy_"
    OUTPUT_NAME "${target}"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  endif()
  if(LUMPY_IN_TREE)
    lumpy_use_pch(${target})
    if(NOT ARG_OUTPUT_DIRECTORY)
      set_target_properties(${target} PROPERTIES
        LIBRARY_OUTPUT_DIRECTORY ${LUMPY_PLUGIN_OUTPUT_DIRECTORY}
        BUILD_RPATH "\$ORIGIN/../.."
        INSTALL_RPATH "\$ORIGIN/../..")
      if(NOT ARG_NO_INSTALL)
        install(TARGETS ${target} LIBRARY DESTINATION ${LUMPY_PLUGIN_INSTALL_DIR})
      endif()
    endif()
  else()
    lumpy_use_plugin_pch(${target})
  endif()
endfunction()

# lumpy_use_plugin_pch(<target>)
#
# Out of tree: compiles <target> (a plugin, or its test executable) with the
# project's one precompiled LibTorch header, made once (~0.5 GB) for every
# target that asks, instead of one per target.
function(lumpy_use_plugin_pch target)
  if(NOT TARGET lumpy_plugin_pch)
    set(_src ${CMAKE_BINARY_DIR}/lumpy_plugin_pch.cc)
    if(NOT EXISTS ${_src})
      file(WRITE ${_src} "// Carries the project's precompiled LibTorch header (lumpy_use_plugin_pch).\n")
    endif()
    add_library(lumpy_plugin_pch OBJECT ${_src})
    target_link_libraries(lumpy_plugin_pch PRIVATE Lumpy::sdk)
    set_target_properties(lumpy_plugin_pch PROPERTIES POSITION_INDEPENDENT_CODE ON)
    target_precompile_headers(lumpy_plugin_pch PRIVATE <torch/torch.h>)
  endif()
  target_precompile_headers(${target} REUSE_FROM lumpy_plugin_pch)
  get_target_property(_type ${target} TYPE)
  if(_type STREQUAL "EXECUTABLE")
    # Executables would get -fPIE; compile them with -fPIC like the header.
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
endfunction()
